"""Reading and checking API requests before any work is done.

Every problem becomes an ApiError with the status that fits: 400 unreadable,
413 too large, 415 wrong type, 422 well-formed but not acceptable.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig

from chat.api.end_users import EndUser
from chat.api.errors import ApiError
from chat.api.message_images import message_images, part_from_data_uri
from chat.unicode_text import INVALID_TEXT, has_invalid_text
from imaging.dicom.windows import AUTO
from inference.engine import DEFAULT_TOP_K, ChatTurn, Sampling
from inference.registry import model_spec_for

MAX_STOP_SEQUENCES = 4


@dataclass(frozen=True)
class ChatCall:
    """A checked chat request, ready for the engine."""

    turns: tuple[ChatTurn, ...]
    sampling: Sampling
    thinking: bool
    stream: bool
    notices: tuple[str, ...] = ()  # what the client should know (a series sampled)
    end_user: EndUser | None = None  # who asked, when a front end says so
    # The last message is the assistant's unfinished answer, to be written on from.
    continue_answer: bool = False


@dataclass(frozen=True)
class RawTurn:
    """A message as the client sent it, before the checks on the conversation."""

    role: str
    text: str
    images: tuple[str, ...]  # data URIs: images, DICOM files, zips of DICOM files
    where: str  # "messages[2]", for error messages


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
    if length > settings.MEDSERVER.max_request_bytes:
        raise _body_too_large()


def _body_too_large() -> ApiError:
    limit = settings.MEDSERVER.max_request_bytes // 1048576
    return ApiError(413, f"The request body is larger than {limit} MB.")


def check_turns(
    raw_turns: list[RawTurn],
    *,
    answer_tokens: int,
    window: str = AUTO,
    continue_answer: bool = False,
) -> tuple[tuple[ChatTurn, ...], tuple[str, ...]]:
    """Check a conversation and decode its images; return it as engine turns,
    with the notices about its DICOM images. It ends with a user message, or,
    to `continue_answer`, with the assistant's unfinished answer.

    DICOM is rendered with `window` and sampled to what fits beside an answer
    of `answer_tokens` (chat.api.message_images). It decodes every image, so
    call it off the event loop.
    """
    limits = settings.MEDSERVER
    if not raw_turns:
        raise ApiError(422, "messages must hold at least one message.", param="messages")
    if len(raw_turns) > limits.max_history_messages:
        raise ApiError(
            422,
            f"{len(raw_turns)} messages sent; at most {limits.max_history_messages} are allowed.",
            param="messages",
        )
    spec = model_spec_for(limits.model)
    turns, notices = [], []
    last_role = "assistant" if continue_answer else "user"
    for index, raw in enumerate(raw_turns):
        _check_role(raw, index, raw_turns, last_role)
        if len(raw.text) > limits.max_text_length:
            raise ApiError(
                413,
                f"{raw.where} is {len(raw.text):,} characters long; "
                f"the limit is {limits.max_text_length:,}.",
                param=raw.where,
            )
        if raw.images and raw.role != "user":
            raise ApiError(422, f"{raw.where}: only user messages can carry images.")
        if raw.images and not spec.multimodal:
            raise ApiError(422, f"{spec.label} reads text only; send the message without images.")
        parts = [
            part_from_data_uri(uri, f"{raw.where} image {n}") for n, uri in enumerate(raw.images, 1)
        ]
        images = message_images(parts, where=raw.where, answer_tokens=answer_tokens, window=window)
        turns.append(ChatTurn(raw.role, raw.text, images.images, images.labels))
        notices += images.notices
    if raw_turns[-1].role != last_role:  # a lone system message asks nothing
        raise ApiError(
            422, f"The last message must be from the {last_role}.", param=raw_turns[-1].where
        )
    return tuple(turns), tuple(notices)


def continue_final_message(data: dict) -> bool:
    """vLLM's and SGLang's continue_final_message: write on from the last
    (assistant) message, which needs add_generation_prompt false."""
    go_on = flag(data, "continue_final_message", False)
    if go_on and flag(data, "add_generation_prompt", True):
        raise ApiError(
            422,
            "continue_final_message needs add_generation_prompt: false.",
            param="add_generation_prompt",
        )
    return go_on


def _check_role(raw: RawTurn, index: int, raw_turns: list[RawTurn], last_role: str) -> None:
    if raw.role not in ("system", "user", "assistant"):
        raise ApiError(
            422, f"{raw.where}: role must be system, user or assistant.", param=raw.where
        )
    if raw.role == "system":
        if index != 0:
            raise ApiError(422, "Only the first message may be a system message.")
        return
    first_chat = 1 if raw_turns[0].role == "system" else 0
    expected = "user" if (index - first_chat) % 2 == 0 else "assistant"
    if raw.role != expected:
        raise ApiError(
            422,
            "After an optional system message, messages must alternate user, assistant, "
            f"user… ({raw.where} should be {expected}).",
            param=raw.where,
        )
    if index == len(raw_turns) - 1 and raw.role != last_role:
        raise ApiError(422, f"The last message must be from the {last_role}.", param=raw.where)


def sampling_from(data: dict, *, max_tokens_names: Iterable[str] = ("max_tokens",)) -> Sampling:
    """The sampling settings asked for, within the server's bounds."""
    config = settings.MEDSERVER
    spec = model_spec_for(config.model)
    max_tokens = config.max_new_tokens or spec.answer_tokens
    for name in max_tokens_names:
        if data.get(name) is not None:
            max_tokens = number(data, name, 1, config.max_model_len, integer=True)
    temperature = number(data, "temperature", 0.0, 2.0, default=config.default_temperature)
    top_p = number(data, "top_p", 0.0, 1.0, default=config.default_top_p, low_open=True)
    # vLLM's and SGLang's extension; -1 (their spelling) or 0: no limit.
    top_k = number(data, "top_k", -1, 1_000_000, default=DEFAULT_TOP_K, integer=True)
    if not config.allow_client_sampling_config:
        # The server's own settings apply; what the client asked is checked, then ignored.
        temperature, top_p = config.default_temperature, config.default_top_p
        top_k = DEFAULT_TOP_K
    return Sampling(
        max_tokens,
        temperature,
        top_p,
        top_k=max(top_k, 0),
        stop=_stops(data.get("stop")),
        ignore_eos=flag(data, "ignore_eos", False),
    )


def number(
    data: dict,
    name: str,
    low: float,
    high: float,
    *,
    default: float | None = None,
    integer: bool = False,
    low_open: bool = False,
):
    """Return data[name] as a number in range (or `default` when absent)."""
    value = data.get(name)
    if value is None:
        return default
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        kind = "a whole number" if integer else "a number"
        raise ApiError(422, f"{name} must be {kind}.", param=name)
    if not math.isfinite(value) or value < low or value > high or (low_open and value == low):
        opener = "above" if low_open else "from"
        raise ApiError(422, f"{name} must be {opener} {low} up to {high}.", param=name)
    return value


def flag(data: dict, name: str, default: bool) -> bool:
    value = data.get(name, default)
    if not isinstance(value, bool):
        raise ApiError(422, f"{name} must be true or false.", param=name)
    return value


def text_of(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise ApiError(422, f"{where}.content must be a string.", param=where)
    return value


def _stops(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if (
        not isinstance(stops, list)
        or len(stops) > MAX_STOP_SEQUENCES
        or not all(isinstance(s, str) and 0 < len(s) <= 200 for s in stops)
    ):
        raise ApiError(
            422, f"stop must be a string or a list of up to {MAX_STOP_SEQUENCES}.", param="stop"
        )
    return tuple(stops)
