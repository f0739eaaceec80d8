"""A conversation as the API takes it, checked and ready for the engine.

What JSON Schema cannot say of a request is checked here, after its model
(api.protocol) has checked its shape: the order of roles, each message's
length (413) and its images, which are decoded and, for DICOM, rendered.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.end_users import EndUser
from api.errors import ApiError
from api.message_images import message_images, part_from_data_uri
from chat import serving
from imaging.dicom.windows import AUTO
from inference.engine import ChatTurn, Sampling


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
    of `answer_tokens` (api.message_images). It decodes every image, so
    call it off the event loop.
    """
    config = serving.config()
    # The models count their lists; a Responses body's instructions are a turn more,
    # and its reasoning items none, so the conversation itself is counted here.
    if not raw_turns:
        raise ApiError(422, "messages must hold at least one message.", param="messages")
    if len(raw_turns) > config.max_history_messages:
        raise ApiError(
            422,
            f"{len(raw_turns)} messages sent; at most {config.max_history_messages} are allowed.",
            param="messages",
        )
    spec = serving.served_model()
    turns, notices = [], []
    last_role = "assistant" if continue_answer else "user"
    for index, raw in enumerate(raw_turns):
        _check_role(raw, index, raw_turns, last_role)
        if len(raw.text) > config.max_text_length:
            raise ApiError(
                413,
                f"{raw.where} is {len(raw.text):,} characters long; "
                f"the limit is {config.max_text_length:,}.",
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


def _check_role(raw: RawTurn, index: int, raw_turns: list[RawTurn], last_role: str) -> None:
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
