"""The OpenAPI 3.1 description of MedServer's JSON API, served at /api/schema."""

from __future__ import annotations

from chat.dicom_windows import WINDOW_CHOICES
from medserver_site import __version__


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


_ERRORS = {
    str(status): {"description": text, **_json(_ref("Error"))}
    for status, text in [
        (400, "Unreadable request, or one the engine cannot serve (too long a conversation)"),
        (401, "No valid API token or session"),
        (403, "CSRF check failed (browser session)"),
        (404, "Unknown model"),
        (413, "Body, text, image, DICOM file or zip over the limits"),
        (415, "Wrong content type or image format"),
        (422, "Well-formed but not acceptable (roles, numbers, counts, unreadable DICOM)"),
        (429, "Rate limit or concurrent-answer limit; see Retry-After"),
        (503, "The model is loading or unavailable; see Retry-After"),
    ]
}

_CHAT_ANSWER = {
    "200": {
        "description": "The answer; with stream=true, Server-Sent Events ending in [DONE]",
        **_json(_ref("ChatAnswer")),
        "content": {
            "application/json": {"schema": _ref("ChatAnswer")},
            "text/event-stream": {"schema": {"type": "string"}},
        },
    },
    **_ERRORS,
}

_DICOM_WINDOW = {
    "enum": list(WINDOW_CHOICES),
    "default": "auto",
    "description": "The window for DICOM images. auto: for CT, MedGemma 1.5's three CT "
    "windows as red, green and blue; other modalities their file's window. file: the "
    "file's window (else its range). lung, mediastinum, bone, brain: CT presets (other "
    "modalities keep their own window).",
}

_SCHEMAS = {
    "Error": {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                    "param": {"type": ["string", "null"]},
                    "code": {"type": ["string", "null"]},
                },
                "required": ["message", "type"],
            }
        },
    },
    "ChatMessage": {
        "type": "object",
        "properties": {
            "role": {"enum": ["system", "user", "assistant"]},
            "content": {"type": "string"},
            "image_data": {
                "type": "array",
                "items": {
                    "type": "string",
                    "description": "A base64 data URI: a PNG, JPEG or WebP image "
                    "(data:image/png;base64,...), a DICOM file (data:application/dicom;"
                    "base64,...) or a zip of DICOM files (data:application/zip;base64,...). "
                    "The DICOM files of one message are read together (a series may come "
                    "zipped or one file per item), become PNG slices each followed by its "
                    "label for the model, and a series longer than fits is sampled evenly.",
                },
            },
        },
        "required": ["role", "content"],
    },
    "ChatRequest": {
        "type": "object",
        "properties": {
            "messages": {"type": "array", "items": _ref("ChatMessage")},
            "max_tokens": {"type": "integer", "minimum": 1},
            "temperature": {"type": "number", "minimum": 0, "maximum": 2},
            "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            "stop": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
            "stream": {"type": "boolean", "default": False},
            "thinking": {"type": "boolean", "default": True},
            "dicom_window": _DICOM_WINDOW,
            "ignore_eos": {
                "type": "boolean",
                "default": False,
                "description": "Write max_tokens tokens even past the end of the answer "
                "(as vLLM and SGLang; for benchmarks)",
            },
        },
        "required": ["messages"],
    },
    "Usage": {
        "type": "object",
        "properties": {
            "prompt_tokens": {"type": "integer"},
            "completion_tokens": {"type": "integer"},
            "total_tokens": {"type": "integer"},
        },
    },
    "ChatAnswer": {
        "type": "object",
        "properties": {
            "model": {"type": "string"},
            "content": {"type": "string"},
            "thinking": {"type": "string"},
            "finish_reason": {"enum": ["stop", "length", "cancelled", "repetition"]},
            "usage": _ref("Usage"),
            "notices": {
                "type": "array",
                "items": {"type": "string"},
                "description": "What the client should know about its DICOM images: a "
                "series sampled to what fits, files left out (also in the stream's done frame)",
            },
            "timings": {
                "type": "object",
                "properties": {
                    "first_token_ms": {"type": ["number", "null"]},
                    "total_ms": {"type": "number"},
                    "tokens_per_second": {"type": ["number", "null"]},
                },
            },
        },
    },
    "OpenAIChatRequest": {
        "type": "object",
        "description": "OpenAI's chat completion request: model, messages (content as a "
        "string or text/image_url parts with data URIs), max_tokens or "
        "max_completion_tokens, temperature, top_p, stop, stream, stream_options; "
        "ignore_eos, continue_final_message and add_generation_prompt (false, to write on "
        "from a last assistant message cut off at max_tokens) as in vLLM and SGLang. "
        "DICOM files and zips of them go as image_url "
        "data URIs (application/dicom, application/zip) or as file parts with file_data; "
        "dicom_window (auto, file, lung, mediastinum, bone, brain) picks their window.",
        "required": ["model", "messages"],
    },
}


def openapi_document() -> dict:
    """Return the OpenAPI document (a plain dict, ready for JSON)."""
    bearer = [{"bearer": []}, {"session": []}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "MedServer API",
            "version": __version__,
            "description": "MedGemma on this machine. Send an API token as "
            "'Authorization: Bearer <token>' (create one under API tokens in the page, or "
            "`python manage.py create_api_token USERNAME`).",
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "sessionid"},
            },
            "schemas": _SCHEMAS,
        },
        "security": bearer,
        "paths": {
            "/api/health": {
                "get": {
                    "summary": "Model status: loading, ready or error (no auth)",
                    "security": [],
                    "responses": {"200": {"description": "Status"}, "503": _ERRORS["503"]},
                }
            },
            "/api/models": {
                "get": {
                    "summary": "Every model variant",
                    "responses": {"200": {"description": "Models"}},
                }
            },
            "/api/model-info": {
                "get": {
                    "summary": "The loaded model, engine, context length and limits",
                    "responses": {"200": {"description": "Model info"}},
                }
            },
            "/api/chat": {
                "post": {
                    "summary": "Chat; stream=true for Server-Sent Events",
                    "requestBody": _json(_ref("ChatRequest")),
                    "responses": _CHAT_ANSWER,
                }
            },
            "/api/analyze": {
                "post": {
                    "summary": "Analyze one or more images or DICOM series with a prompt",
                    "requestBody": {
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "images": {
                                            "type": "array",
                                            "items": {"type": "string", "format": "binary"},
                                            "description": "PNG, JPEG or WebP images, "
                                            "DICOM files, zips of DICOM files",
                                        },
                                        "prompt": {"type": "string"},
                                        "dicom_window": _DICOM_WINDOW,
                                        "stream": {"type": "boolean"},
                                        "max_tokens": {"type": "integer"},
                                        "temperature": {"type": "number"},
                                        "top_p": {"type": "number"},
                                    },
                                    "required": ["images", "prompt"],
                                }
                            }
                        }
                    },
                    "responses": _CHAT_ANSWER,
                }
            },
            "/v1/models": {
                "get": {
                    "summary": "OpenAI-compatible model list",
                    "responses": {"200": {"description": "Models"}},
                }
            },
            "/v1/chat/completions": {
                "post": {
                    "summary": "OpenAI-compatible chat completions",
                    "requestBody": _json(_ref("OpenAIChatRequest")),
                    "responses": {"200": {"description": "Completion or SSE chunks"}, **_ERRORS},
                }
            },
        },
    }
