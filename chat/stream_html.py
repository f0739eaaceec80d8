"""The HTML frames the chat WebSocket sends, each rendered from the page's partials."""

from __future__ import annotations

from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from chat import selectors
from chat.markdown import render_markdown
from chat.models import ChatSession, Message

PAGE = "chat/session.html"


def messages_added(question: Message, answer: Message) -> str:
    """The user's message and the empty answer, appended to the conversation."""
    for message in (question, answer):
        # Both are new at the end of the branch: each is the only version of its turn.
        message.versions = selectors.Versions(number=1, count=1, previous_id=None, next_id=None)
    context = {"new_messages": [question, answer], "session": question.session}
    return render_to_string(f"{PAGE}#messages-added", context)


def conversation(session: ChatSession, live: dict | None = None) -> str:
    """The whole branch on show, replacing the page's; answers being written
    show the text they have so far (`live`, from chat.answers.live_answers)."""
    path = selectors.active_path(session)
    for message in path:
        if live and message.pk in live:
            message.content = live[message.pk].content
            message.thinking = live[message.pk].thinking
            message.thinking_ms = live[message.pk].thinking_ms
    context = {"messages": path, "session": session, "oob": True}
    return render_to_string(f"{PAGE}#conversation", context)


def composer_sent() -> str:
    """Clears the sender's pending images and any earlier alert."""
    return render_to_string(f"{PAGE}#composer-sent")


def answer_delta(
    message_id: int,
    *,
    thinking_closed: str,
    thinking_tail: str | None,
    answer_closed: str,
    answer_tail: str | None,
    thought: tuple[str, int | None] | None,
) -> str:
    """New text of an answer being written: blocks that closed are appended
    rendered, the open block is replaced. `thought` (the whole trace and how
    long it took) closes the thinking panel once the answer begins."""
    context = {
        "message_id": message_id,
        "answer_closed": _html(answer_closed),
        "answer_tail": None if answer_tail is None else _html(answer_tail),
    }
    if thought is not None:
        context["thought"] = {"thinking": thought[0], "thinking_ms": thought[1], "pk": message_id}
    else:
        context["thinking_closed"] = _html(thinking_closed)
        context["thinking_tail"] = None if thinking_tail is None else _html(thinking_tail)
    return render_to_string(f"{PAGE}#answer-delta", context)


def _html(text: str) -> str:
    return mark_safe(render_markdown(text)) if text else ""  # noqa: S308 - sanitized


def message_streaming(message: Message) -> str:
    """An answer being written again in place (continued), with its text so far."""
    message.versions = selectors.versions_of(message)
    return render_to_string(f"{PAGE}#message", {"message": message, "oob": True})


def message_final(message_id: int) -> str | None:
    """The finished message, replacing its streaming version in place (None if deleted)."""
    message = Message.objects.filter(pk=message_id).select_related("session").first()
    if message is None:
        return None
    message.versions = selectors.versions_of(message)
    return render_to_string(f"{PAGE}#message", {"message": message, "oob": True})


def composer_alert(text: str) -> str:
    return render_to_string(f"{PAGE}#composer-alert", {"alert": text, "oob": True})


def toast(text: str, *, kind: str = "info") -> str:
    """A small notice that comes and goes by itself."""
    return render_to_string(f"{PAGE}#toast", {"toast": text, "toast_kind": kind})
