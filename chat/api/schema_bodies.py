"""The bodies in MedServer's OpenAPI document (chat.api.schema): requests as the
server accepts them, to the value, and answers as it sends them."""

from __future__ import annotations

from django.conf import settings

from chat.api.protocol import MAX_STOP_SEQUENCES
from chat.api.unsupported import CHAT_COMPLETIONS, RESPONSES
from chat.dicom_windows import WINDOW_CHOICES
from inference.registry import model_spec_for


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


DICOM_WINDOW = {
    "enum": list(WINDOW_CHOICES),
    "default": "auto",
    "description": "The window for DICOM images. auto: for CT, "
    "MedGemma 1.5's three CT windows as red, green and blue; other modalities their file's "
    "window. file: the file's window (else its range). lung, mediastinum, bone, brain: CT "
    "presets (other modalities keep their own window).",
}
_DATA_URI = {
    "type": "string",
    "description": "A base64 data URI: a PNG, JPEG or WebP image (data:image/png;base64,...), "
    "a PDF (data:application/pdf;base64,...: its pages become images, each labelled "
    "'Document page 1 of 3'), a DICOM file (data:application/dicom;base64,...) or a zip of "
    "DICOM files "
    "(data:application/zip;base64,...). The DICOM files of one message are read together, "
    "become PNG slices each followed by its label for the model, and a series longer than "
    "fits is sampled evenly. URLs are not fetched.",
}
_STOP = {
    "oneOf": [
        {"type": "string", "minLength": 1, "maxLength": 200},
        {
            "type": "array",
            "maxItems": MAX_STOP_SEQUENCES,
            "items": {"type": "string", "minLength": 1, "maxLength": 200},
        },
        {"type": "null"},
    ]
}
_NULL = {"type": "null"}


def _sampling(max_tokens_names: tuple[str, ...]) -> dict:
    config = settings.MEDSERVER
    tokens = {"type": ["integer", "null"], "minimum": 1, "maximum": config.max_model_len}
    return {
        **{name: tokens for name in max_tokens_names},
        "temperature": {"type": ["number", "null"], "minimum": 0, "maximum": 2},
        "top_p": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 1},
        "top_k": {
            "type": ["integer", "null"],
            "minimum": -1,
            "maximum": 1_000_000,
            "description": "Sample from the k likeliest tokens; -1 or 0: no limit. "
            "Default 64, MedGemma's own.",
        },
        "stop": _STOP,
        "ignore_eos": {
            "type": "boolean",
            "default": False,
            "description": "Write max_tokens tokens even past the end of the answer "
            "(as vLLM and SGLang; for benchmarks)",
        },
        "stream": {"type": "boolean", "default": False},
        "dicom_window": DICOM_WINDOW,
    }


def _unsupported(table) -> dict:
    """Each unsupported parameter, with the one value (or none) that asks for nothing."""
    harmless = {
        "n": {"enum": [1, None]},
        "logprobs": {"enum": [False, None]},
        "top_logprobs": {"enum": [0, None]},
        "seed": _NULL,
        "presence_penalty": {"enum": [0, None]},
        "frequency_penalty": {"enum": [0, None]},
        "logit_bias": {"oneOf": [_NULL, {"type": "object", "maxProperties": 0}]},
        "response_format": {
            "oneOf": [
                _NULL,
                {
                    "type": "object",
                    "properties": {"type": {"const": "text"}},
                    "required": ["type"],
                    "additionalProperties": False,
                },
            ]
        },
        "tool_choice": {"enum": ["auto", "none", None]},
        "function_call": {"enum": ["auto", "none", None]},
        "modalities": {"oneOf": [_NULL, {"const": ["text"]}]},
        "audio": _NULL,
        "prediction": _NULL,
        "min_p": {"enum": [0, None]},
        "repetition_penalty": {"enum": [1, None]},
        "min_tokens": {"enum": [0, None]},
        "best_of": {"enum": [1, None]},
        "use_beam_search": {"enum": [False, None]},
        **{
            name: _NULL
            for name in (
                "guided_json",
                "guided_regex",
                "guided_choice",
                "guided_grammar",
                "structured_outputs",
                "regex",
                "json_schema",
                "ebnf",
            )
        },
        "previous_response_id": _NULL,
        "conversation": _NULL,
        "background": {"enum": [False, None]},
        "prompt": _NULL,
        "text": {
            "oneOf": [
                _NULL,
                {
                    "type": "object",
                    "properties": {
                        "format": {
                            "oneOf": [
                                _NULL,
                                {
                                    "type": "object",
                                    "properties": {"type": {"const": "text"}},
                                    "required": ["type"],
                                    "additionalProperties": False,
                                },
                            ]
                        },
                        "verbosity": {},
                    },
                    "additionalProperties": False,
                },
            ]
        },
    }
    return {
        item.name: {**harmless[item.name], "description": f"Not supported (400): {item.reason}"}
        for item in table
    }


_END_USER = {
    "type": ["string", "null"],
    "description": "The end user, as a front end names them; recorded in the audit trail "
    "and the answer's provenance (as are Open WebUI's X-OpenWebUI-User-* headers)",
}


def component_schemas() -> dict:
    """The request and answer bodies, under components/schemas."""
    spec = model_spec_for(settings.MEDSERVER.model)
    model = {
        "type": "string",
        "enum": sorted({spec.api_id, spec.key}),
        "description": "The model served (any other name: 404)",
    }
    chat_message = {
        "type": "object",
        "properties": {
            "role": {"enum": ["system", "user", "assistant"]},
            "content": {"type": "string", "default": ""},
            "image_data": {"type": ["array", "null"], "items": _DATA_URI},
        },
        "required": ["role"],
    }
    openai_part = {
        "oneOf": [
            {
                "type": "object",
                "properties": {"type": {"const": "text"}, "text": {"type": "string"}},
                "required": ["type", "text"],
            },
            {
                "type": "object",
                "properties": {
                    "type": {"const": "image_url"},
                    "image_url": {
                        "oneOf": [
                            _DATA_URI,
                            {
                                "type": "object",
                                "properties": {"url": _DATA_URI, "detail": {}},
                                "required": ["url"],
                            },
                        ]
                    },
                },
                "required": ["type", "image_url"],
            },
            {
                "type": "object",
                "properties": {
                    "type": {"const": "file"},
                    "file": {
                        "type": "object",
                        "properties": {
                            "file_data": {"type": "string"},
                            "filename": {"type": ["string", "null"]},
                        },
                        "required": ["file_data"],
                    },
                },
                "required": ["type", "file"],
            },
        ]
    }
    openai_message = {
        "type": "object",
        "properties": {
            "role": {"enum": ["system", "developer", "user", "assistant"]},
            "content": {
                "oneOf": [{"type": "string"}, _NULL, {"type": "array", "items": openai_part}]
            },
            "name": {},
        },
        "required": ["role"],
    }
    response_part = {
        "oneOf": [
            {
                "type": "object",
                "properties": {
                    "type": {"enum": ["input_text", "output_text"]},
                    "text": {"type": "string"},
                },
                "required": ["type", "text"],
            },
            {
                "type": "object",
                "properties": {"type": {"const": "input_image"}, "image_url": _DATA_URI},
                "required": ["type", "image_url"],
            },
            {
                "type": "object",
                "properties": {
                    "type": {"const": "input_file"},
                    "file_data": {"type": "string"},
                    "filename": {"type": ["string", "null"]},
                },
                "required": ["type", "file_data"],
            },
        ]
    }
    response_item = {
        "oneOf": [
            {
                "type": "object",
                "properties": {
                    "type": {"const": "message"},
                    "role": {"enum": ["system", "developer", "user", "assistant"]},
                    "content": {
                        "oneOf": [{"type": "string"}, {"type": "array", "items": response_part}]
                    },
                },
                "required": ["role", "content"],
            },
            {
                "type": "object",
                "properties": {"type": {"const": "reasoning"}},
                "required": ["type"],
                "description": "An earlier answer's thinking, sent back: ignored",
            },
        ]
    }
    usage = {
        "type": "object",
        "properties": {
            "prompt_tokens": {"type": "integer"},
            "completion_tokens": {"type": "integer"},
            "total_tokens": {"type": "integer"},
        },
    }
    provenance = {
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
    return {
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
        "ChatMessage": chat_message,
        "ChatRequest": {
            "type": "object",
            "properties": {
                "messages": {
                    "type": "array",
                    "items": _ref("ChatMessage"),
                    "minItems": 1,
                    "maxItems": settings.MEDSERVER.max_history_messages,
                },
                **_sampling(("max_tokens",)),
                "thinking": {"type": "boolean", "default": True},
                "user": _END_USER,
            },
            "required": ["messages"],
        },
        "Usage": usage,
        "Provenance": provenance,
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
        "OpenAIChatRequest": {
            "type": "object",
            "description": "OpenAI's chat completion request. Other OpenAI fields are "
            "accepted and do nothing: tools (the model never calls one), "
            "parallel_tool_calls, store, metadata, service_tier, stream_options other than "
            "include_usage. Thinking is off with reasoning_effort none or minimal, or "
            "chat_template_kwargs.enable_thinking false.",
            "properties": {
                "model": model,
                "messages": {
                    "type": "array",
                    "items": openai_message,
                    "minItems": 1,
                    "maxItems": settings.MEDSERVER.max_history_messages,
                },
                **_sampling(("max_tokens", "max_completion_tokens")),
                "stream_options": {},
                "reasoning_effort": {},
                "chat_template_kwargs": {},
                "continue_final_message": {
                    "type": "boolean",
                    "description": "As in vLLM and SGLang: with add_generation_prompt false, "
                    "write on from a last assistant message (one cut off at max_tokens).",
                },
                "add_generation_prompt": {"type": "boolean"},
                "tools": {},
                "user": _END_USER,
                **_unsupported(CHAT_COMPLETIONS),
            },
            "required": ["model", "messages"],
        },
        "ChatCompletion": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "object": {"const": "chat.completion"},
                "created": {"type": "integer"},
                "model": {"type": "string"},
                "choices": {"type": "array"},
                "usage": usage,
                "provenance": provenance,
            },
            "required": ["id", "object", "choices", "model"],
        },
        "ResponseRequest": {
            "type": "object",
            "description": "OpenAI's Responses API request. tools, store, metadata, "
            "include, truncation, parallel_tool_calls, service_tier are accepted and do "
            "nothing. Thinking is off with reasoning.effort none or minimal.",
            "properties": {
                "model": model,
                "input": {
                    "oneOf": [
                        {"type": "string"},
                        {"type": "array", "items": response_item, "minItems": 1},
                    ]
                },
                "instructions": {"type": ["string", "null"]},
                **_sampling(("max_output_tokens",)),
                "reasoning": {},
                "tools": {},
                "user": _END_USER,
                **_unsupported(RESPONSES),
            },
            "required": ["model", "input"],
        },
        "Response": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "object": {"const": "response"},
                "status": {"enum": ["completed", "incomplete"]},
                "output": {"type": "array"},
                "usage": {"type": "object"},
                "provenance": provenance,
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
