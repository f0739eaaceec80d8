"""Reads of chat data, always scoped to the user who asks."""

from __future__ import annotations

from pathlib import Path

from django.db.models import QuerySet

from chat.models import ApiToken, Attachment, ChatSession, Message
from inference.engine import ChatTurn


def sessions_for(user) -> QuerySet[ChatSession]:
    """The user's sessions, most recently active first."""
    return ChatSession.objects.filter(owner=user).order_by("-updated_at")


def session_for(user, session_id) -> ChatSession:
    """Return the user's session; raise ChatSession.DoesNotExist for anyone else's."""
    return ChatSession.objects.get(owner=user, pk=session_id)


def messages_for(session: ChatSession) -> QuerySet[Message]:
    return session.messages.prefetch_related("attachments").order_by("id")


def attachments_for(user) -> QuerySet[Attachment]:
    """The user's images; nobody else's can be reached through it."""
    return Attachment.objects.filter(owner=user)


def conversation_before(answer: Message) -> tuple[ChatTurn, ...]:
    """The turns the model must see to write `answer`, oldest first.

    Failed or empty answers are left out, and the user turns around them are
    joined, because the chat template requires user and model to alternate.
    """
    turns: list[ChatTurn] = []
    history = messages_for(answer.session).filter(id__lt=answer.id)
    for message in history:
        if message.role == Message.Role.ASSISTANT:
            if not message.content.strip():
                continue
            role, images = "assistant", ()
        else:
            role = "user"
            images = tuple(Path(a.file.path) for a in message.attachments.all())
        if turns and turns[-1].role == role:
            previous = turns.pop()
            text = f"{previous.text}\n\n{message.content}".strip()
            turns.append(ChatTurn(role, text, previous.images + images))
        else:
            turns.append(ChatTurn(role, message.content, images))
    return tuple(turns)


def api_tokens_for(user) -> QuerySet[ApiToken]:
    """The user's API tokens, newest first, revoked ones included."""
    return ApiToken.objects.filter(owner=user).order_by("-created_at")
