"""Reading an API request's body before any work is done: its type, its size
and its JSON. What the JSON must hold is each endpoint's model's business
(api.protocol).

Every problem becomes an ApiError: 400 unreadable, 413 too large, 415 wrong type.
"""

from __future__ import annotations

import json

from asgiref.sync import sync_to_async
from django.core.exceptions import RequestDataTooBig

from api.errors import ApiError
from chat import serving
from chat.unicode_text import INVALID_TEXT, has_invalid_text


async def read_json_off_loop(request) -> dict:
    """read_json on a worker thread: parsing megabytes of JSON (a message's
    images) on the server's loop would hold up every other request meanwhile."""
    return await sync_to_async(read_json, thread_sensitive=False)(request)


def read_json(request) -> dict:
    """Return the JSON object in the body; check type and size before reading it."""
    content_type = request.content_type or ""
    if content_type != "application/json":
        raise ApiError(415, "Send the request body as JSON (Content-Type: application/json).")
    check_length(request)
    try:
        data = json.loads(request.body)
    except RequestDataTooBig:
        raise _body_too_large() from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    if has_invalid_text(data):
        raise ApiError(400, INVALID_TEXT)
    return data


def check_length(request) -> None:
    """Refuse a body over the limit from its declared length, before reading it."""
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        raise ApiError(400, "The Content-Length header is not a number.") from None
    if length > serving.config().max_request_bytes:
        raise _body_too_large()


def _body_too_large() -> ApiError:
    limit = serving.config().max_request_bytes // 1048576
    return ApiError(413, f"The request body is larger than {limit} MB.")
