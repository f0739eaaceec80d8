"""The OpenAPI 3.1 description of MedServer's JSON API, served at /api/schema.

It says exactly what the server accepts, so that a client generated from it
(or a fuzzer such as schemathesis) is neither refused for a request the
schema allows nor accepted for one it forbids. What JSON Schema cannot say
(the order of roles in a conversation, what an image holds, the engine's
context length) is refused with 422, 413 or 415 and documented as such.
Limits come from the running server's settings, so the document is built per
request.
"""

from __future__ import annotations

from django.conf import settings

from chat.api.schema_bodies import DICOM_WINDOW, component_schemas
from imaging.dicom.windows import WINDOW_CHOICES
from inference.registry import model_spec_for
from medserver_site import __version__

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


def _analyze_form() -> dict:
    return {
        "type": "object",
        "properties": {
            "images": {
                "type": "array",
                "items": {"type": "string", "format": "binary"},
                "minItems": 1,
                "description": "PNG, JPEG or WebP images, DICOM files, zips of DICOM files",
            },
            "prompt": {
                "type": "string",
                "pattern": r"\S",
                "maxLength": settings.MEDSERVER.max_text_length,
            },
            "dicom_window": {**DICOM_WINDOW, "enum": [*WINDOW_CHOICES, ""]},
            "stream": {"type": "boolean"},
            "thinking": {"type": "boolean"},
            "max_tokens": {"type": "integer", "minimum": 1},
            "temperature": {"type": "number", "minimum": 0, "maximum": 2},
            "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            "user": {"type": "string"},
        },
        "required": ["images", "prompt"],
    }


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
    served = model_spec_for(settings.MEDSERVER.model).api_id
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
            "schemas": component_schemas(),
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
                {"content": {"multipart/form-data": {"schema": _analyze_form()}}},
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
