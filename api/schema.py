"""The OpenAPI 3.1 description of MedServer's JSON API, served at /api/schema.

It says exactly what the server accepts, so that a client generated from it
(or a fuzzer such as schemathesis) is neither refused for a request the
schema allows nor accepted for one it forbids. What JSON Schema cannot say
(the order of roles in a conversation, what an image holds, the engine's
context length) is refused with 422, 413 or 415 and documented as such.

The request bodies are generated from the models that check them
(api.protocol, api.openai_protocol), so the two cannot drift; their
limits come from the running server's settings, so the document is built per
request. The answers are described here, as the handlers send them.
"""

from __future__ import annotations

from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from api.openai_protocol import OpenAIChatRequest, ResponseRequest
from api.protocol import AnalyzeForm, ChatRequest
from chat import serving
from medserver_site import __version__

_REF = "#/components/schemas/{model}"

_ERROR_TEXTS = {
    400: "Unreadable request, a parameter MedServer does not support (param names it), "
    "or one the engine cannot serve (too long a conversation)",
    401: "No valid API token or session",
    403: "CSRF check failed (browser session)",
    404: "The model named is not served here",
    405: "Method not allowed; see the Allow header",
    413: "Body, text, image, DICOM file or zip over the limits",
    415: "Wrong content type or image format",
    422: "Well-formed but not acceptable: the order of roles, numbers out of range, "
    "counts, unreadable images or DICOM",
    429: "Rate limit or concurrent-answer limit; see Retry-After",
    500: "The engine failed while answering; the server log has the details",
    503: "The model is loading or unavailable, or the server is busy; see Retry-After",
}
_GET_ERRORS = (401, 405, 429)
_POST_ERRORS = (400, 401, 403, 405, 413, 415, 422, 429, 500, 503)


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict:
    responses = {}
    for status in statuses:
        response = {"description": _ERROR_TEXTS[status], **_json(_ref("Error"))}
        if status in (429, 503):
            response["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
        if status == 405:
            response["headers"] = {"Allow": {"schema": {"type": "string"}}}
        responses[str(status)] = response
    return responses


# One Server-Sent Event: its data is a JSON frame, or [DONE] at the end.
_SSE_EVENT = {
    "type": "object",
    "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
    "required": ["data"],
}


def _answer(schema: str, description: str) -> dict:
    return {
        "200": {
            "description": description,
            "content": {
                "application/json": {"schema": _ref(schema)},
                "text/event-stream": {"schema": _SSE_EVENT},
            },
        }
    }


class _Untitled(GenerateJsonSchema):
    """Fields without a title (the name says it) and without a null default."""

    def field_title_should_be_set(self, schema) -> bool:
        return False

    def default_schema(self, schema) -> dict:
        # A field left out and one sent as null are one to MedServer: no "default": null.
        described = super().default_schema(schema)
        if described.get("default", ...) is None:
            del described["default"]
        return described


def _request_schemas() -> dict:
    """The JSON request bodies, from their models, with the models they hold."""
    models = [(model, "validation") for model in (ChatRequest, OpenAIChatRequest, ResponseRequest)]
    return models_json_schema(models, ref_template=_REF, schema_generator=_Untitled)[1]["$defs"]


def _get(summary: str, schema: dict | None = None, **extra) -> dict:
    ok = {"description": summary, **(_json(schema) if schema else {})}
    return {"get": {"summary": summary, "responses": {"200": ok, **_errors(*_GET_ERRORS)}, **extra}}


def _post(summary: str, body: dict, answer: dict, *extra_errors: int) -> dict:
    return {
        "post": {
            "summary": summary,
            "requestBody": {"required": True, **body},
            "responses": {**answer, **_errors(*sorted({*_POST_ERRORS, *extra_errors}))},
        }
    }


def openapi_document() -> dict:
    """Return the OpenAPI document (a plain dict, ready for JSON)."""
    served = serving.served_model().api_id
    health = {
        "summary": "Model status: loading, ready or error (no auth)",
        "security": [],
        "responses": {
            "200": {"description": "Ready", **_json({"type": "object"})},
            "503": {"description": "Loading or failed", **_json({"type": "object"})},
            **_errors(405),
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "MedServer API",
            "version": __version__,
            "description": "MedGemma on this machine. Send an API token as "
            "'Authorization: Bearer <token>' (create one under API tokens in the page, or "
            "`python manage.py create_api_token USERNAME`; for a front end many people "
            f"share, `--service NAME`). The model served is {served!r}.",
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "sessionid"},
            },
            "schemas": {**_request_schemas(), **_ANSWERS},
        },
        "security": [{"bearer": []}, {"session": []}],
        "paths": {
            "/api/health": {"get": health},
            "/api/models": _get("Every model variant", {"type": "object"}),
            "/api/model-info": _get(
                "The loaded model, engine, context length and limits", {"type": "object"}
            ),
            "/api/schema": _get("This document", {"type": "object"}),
            "/api/chat": _post(
                "Chat; stream=true for Server-Sent Events",
                _json(_ref("ChatRequest")),
                _answer(
                    "ChatAnswer",
                    "The answer; with stream=true, Server-Sent Events ending in [DONE]",
                ),
            ),
            "/api/analyze": _post(
                "Analyze one or more images or DICOM series with a prompt",
                {
                    "content": {
                        "multipart/form-data": {
                            "schema": AnalyzeForm.model_json_schema(schema_generator=_Untitled)
                        }
                    }
                },
                _answer("ChatAnswer", "The answer; with stream=true, Server-Sent Events"),
            ),
            "/v1/models": _get("OpenAI-compatible model list", _ref("ModelList")),
            "/v1/chat/completions": _post(
                "OpenAI-compatible chat completions",
                _json(_ref("OpenAIChatRequest")),
                _answer("ChatCompletion", "Completion, or chunks as Server-Sent Events"),
                404,
            ),
            "/v1/responses": _post(
                "OpenAI's Responses API (text, images, reasoning items; stream=true for "
                "its events)",
                _json(_ref("ResponseRequest")),
                _answer("Response", "The response, or its events as Server-Sent Events"),
                404,
            ),
        },
    }


_USAGE = {
    "type": "object",
    "properties": {
        "prompt_tokens": {"type": "integer"},
        "completion_tokens": {"type": "integer"},
        "total_tokens": {"type": "integer"},
    },
}
_PROVENANCE = {
    "type": "object",
    "description": "What wrote the answer, and for whom (the token, and the end user its "
    "front end named)",
    "properties": {
        "model": {"type": "string"},
        "engine": {"type": "string"},
        "token": {"type": "object"},
        "end_user": {"type": "object"},
    },
}
# The answers, as the handlers send them.
_ANSWERS = {
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
        "required": ["error"],
    },
    "Usage": _USAGE,
    "Provenance": _PROVENANCE,
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
                "description": "What the client should know about its DICOM images and "
                "PDFs: a series sampled to what fits, files left out, a document cut to its "
                "first pages (also in the stream's done frame)",
            },
            "timings": {
                "type": "object",
                "properties": {
                    "first_token_ms": {"type": ["number", "null"]},
                    "total_ms": {"type": "number"},
                    "tokens_per_second": {"type": ["number", "null"]},
                },
            },
            "provenance": _ref("Provenance"),
        },
        "required": ["content", "finish_reason", "usage"],
    },
    "ChatCompletion": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "object": {"const": "chat.completion"},
            "created": {"type": "integer"},
            "model": {"type": "string"},
            "choices": {"type": "array"},
            "usage": _USAGE,
            "provenance": _PROVENANCE,
        },
        "required": ["id", "object", "choices", "model"],
    },
    "Response": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "object": {"const": "response"},
            "status": {"enum": ["completed", "incomplete"]},
            "output": {"type": "array"},
            "usage": {"type": "object"},
            "provenance": _PROVENANCE,
        },
        "required": ["id", "object", "status", "output"],
    },
    "ModelList": {
        "type": "object",
        "properties": {
            "object": {"const": "list"},
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"id": {"type": "string"}, "object": {"const": "model"}},
                    "required": ["id", "object"],
                },
            },
        },
        "required": ["object", "data"],
    },
}
