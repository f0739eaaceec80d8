"""Writes of chat data: every change to sessions and messages goes through here."""

from __future__ import annotations

import hashlib
import secrets
import uuid

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from chat.errors import MessageRejected
from chat.images import clean_image
from chat.models import ApiToken, Attachment, ChatSession, Message
from inference.engine import Finished

TITLE_LENGTH = 60
INTERRUPTED = "The server stopped before this answer was finished."


def session_create(*, owner, model_name: str) -> ChatSession:
    return ChatSession.objects.create(owner=owner, model_name=model_name)


def session_start(*, owner, model_name: str) -> ChatSession:
    """Return a fresh session for a new chat, reusing the newest one if it is still empty."""
    newest = ChatSession.objects.filter(owner=owner).order_by("-updated_at").first()
    if newest is not None and not newest.messages.exists():
        return newest
    return session_create(owner=owner, model_name=model_name)


def _title_from(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1].rstrip() + "…"


@transaction.atomic
def message_send(
    *, session: ChatSession, content: str, attachment_ids=(), model_name: str = ""
) -> tuple[Message, Message]:
    """Save the user's message and an empty answer (status streaming) after it.

    Raise MessageRejected, saving nothing, when the message is empty, too long,
    carries too many or foreign images, or an answer is still being written.
    """
    limits = settings.MEDSERVER
    content = content.strip()
    attachment_ids = _attachment_uuids(attachment_ids)
    if not content and not attachment_ids:
        raise MessageRejected("Type a message or attach an image first.")
    if len(content) > limits.max_text_length:
        raise MessageRejected(
            f"The message is {len(content):,} characters long; the limit is "
            f"{limits.max_text_length:,}."
        )
    if len(attachment_ids) > limits.max_image_count:
        raise MessageRejected(
            f"{len(attachment_ids)} images attached; at most {limits.max_image_count} per message."
        )
    attachments = list(
        Attachment.objects.select_for_update().filter(
            owner=session.owner, pk__in=attachment_ids, message__isnull=True
        )
    )
    if len(attachments) != len(attachment_ids):
        raise MessageRejected("An attached image is no longer available; attach it again.")
    if session.messages.filter(status=Message.Status.STREAMING).exists():
        raise MessageRejected("An answer is still being written; wait for it or stop it.")

    question = Message.objects.create(session=session, role=Message.Role.USER, content=content)
    for attachment in attachments:
        attachment.message = question
        attachment.save(update_fields=["message"])
    answer = Message.objects.create(
        session=session,
        role=Message.Role.ASSISTANT,
        status=Message.Status.STREAMING,
        model_name=model_name,
    )
    if not session.title:
        session.title = _title_from(content) or "Image analysis"
    session.save(update_fields=["title", "updated_at"])
    return question, answer


def answer_save_progress(message_id: int, *, content: str, thinking: str) -> None:
    """Keep the text streamed so far, so a crash loses at most a moment of it."""
    Message.objects.filter(pk=message_id, status=Message.Status.STREAMING).update(
        content=content, thinking=thinking
    )


def answer_finish(
    message_id: int, *, content: str, thinking: str, finished: Finished, engine: str
) -> None:
    """Save a finished answer: complete, or stopped when it was cancelled."""
    status = Message.Status.STOPPED if finished.reason == "cancelled" else Message.Status.COMPLETE
    Message.objects.filter(pk=message_id).update(
        content=content,
        thinking=thinking,
        status=status,
        engine=engine,
        prompt_tokens=finished.prompt_tokens,
        completion_tokens=finished.completion_tokens,
        first_token_ms=_ms(finished.first_token_seconds),
        duration_ms=_ms(finished.total_seconds),
        completed_at=timezone.now(),
    )


def answer_fail(message_id: int, *, content: str, thinking: str, error: str) -> None:
    """Save a failed answer with what it had written and why it stopped."""
    Message.objects.filter(pk=message_id).update(
        content=content,
        thinking=thinking,
        status=Message.Status.ERROR,
        error=error,
        completed_at=timezone.now(),
    )


def answers_mark_interrupted() -> int:
    """At start-up: answers left streaming by a previous run did not finish; say so."""
    return Message.objects.filter(status=Message.Status.STREAMING).update(
        status=Message.Status.ERROR, error=INTERRUPTED, completed_at=timezone.now()
    )


def _attachment_uuids(values) -> list[uuid.UUID]:
    """Parse the ids a client sent; raise MessageRejected for anything else."""
    try:
        return list(dict.fromkeys(uuid.UUID(str(value)) for value in values if value))
    except ValueError:
        raise MessageRejected(
            "An attached image is no longer available; attach it again."
        ) from None


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def attachment_create(*, owner, upload) -> Attachment:
    """Store an uploaded image (cleaned) as a pending attachment of `owner`.

    Raise MessageRejected when the file is not an acceptable image.
    """
    limits = settings.MEDSERVER
    raw = upload.read(limits.max_payload_bytes + 1)
    image = clean_image(raw, name=upload.name or "The image", max_bytes=limits.max_payload_bytes)
    attachment = Attachment(
        owner=owner,
        content_type=image.content_type,
        width=image.width,
        height=image.height,
        size_bytes=len(image.data),
    )
    attachment.file.save(f"image{image.extension}", ContentFile(image.data), save=False)
    attachment.save()
    return attachment


API_TOKEN_PREFIX = "ms_"


def _token_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_token_create(*, owner, name: str) -> tuple[ApiToken, str]:
    """Create an API token; return it with its key, which is never stored or shown again."""
    key = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        owner=owner,
        name=name.strip()[:100] or "API token",
        prefix=key[:10],
        key_hash=_token_hash(key),
    )
    return token, key


def api_token_revoke(*, owner, token_id: int) -> bool:
    """Revoke one of the owner's tokens; return False if there is no such active token."""
    return bool(
        ApiToken.objects.filter(owner=owner, pk=token_id, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
    )


def api_token_user(key: str):
    """Return the active user an active token belongs to (noting its use), else None."""
    token = (
        ApiToken.objects.select_related("owner")
        .filter(key_hash=_token_hash(key), revoked_at__isnull=True, owner__is_active=True)
        .first()
    )
    if token is None:
        return None
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token.owner
