"""The HTML frames the chat WebSocket sends, each rendered from the page's partials."""

from __future__ import annotations

from django.template.loader import render_to_string

from chat.models import Message

PAGE = "chat/session.html"


def messages_added(question: Message, answer: Message) -> str:
    """The user's message and the empty answer, appended to the message list."""
    context = {"new_messages": [question, answer], "session": question.session}
    return render_to_string(f"{PAGE}#messages-added", context)


def composer_sent() -> str:
    """Clears the sender's pending images and any earlier alert."""
    return render_to_string(f"{PAGE}#composer-sent")


def answer_delta(event: dict) -> str:
    """New text of a streaming answer, appended where it belongs."""
    return render_to_string(f"{PAGE}#answer-delta", event)


def message_final(message: Message) -> str:
    """The finished message, replacing its streaming version in place."""
    return render_to_string(f"{PAGE}#message", {"message": message, "oob": True})


def composer_alert(text: str) -> str:
    return render_to_string(f"{PAGE}#composer-alert", {"alert": text, "oob": True})
