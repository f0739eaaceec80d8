"""Writes of messages: questions, versions of a turn (edit, regenerate), deletion."""

from __future__ import annotations

import uuid

from django.db import transaction

from chat import generation_settings, selectors, serving
from chat.errors import Rejected
from chat.models import Attachment, ChatSession, Draft, Message
from chat.unicode_text import INVALID_TEXT, has_invalid_text

TITLE_LENGTH = 60


def _title_from(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1].rstrip() + "…"


def _check_question(content: str, attachment_count: int) -> None:
    """Raise Rejected when a question cannot be sent as it is."""
    config = serving.config()
    if not content and not attachment_count:
        raise Rejected("Type a message or attach an image first.")
    if has_invalid_text(content):
        raise Rejected(INVALID_TEXT)
    if len(content) > config.max_text_length:
        raise Rejected(
            f"The message is {len(content):,} characters long; the limit is "
            f"{config.max_text_length:,}."
        )
    if attachment_count > config.max_image_count:
        raise Rejected(
            f"{attachment_count} images attached; at most {config.max_image_count} per message."
        )


def check_idle(session: ChatSession) -> None:
    """Raise Rejected while an answer of the session is being written."""
    if session.messages.filter(status=Message.Status.STREAMING).exists():
        raise Rejected("An answer is still being written; wait for it or stop it.")


def _make_active(message: Message) -> None:
    """Show `message` as its turn's version; its siblings step back."""
    Message.objects.filter(session_id=message.session_id, parent_id=message.parent_id).exclude(
        pk=message.pk
    ).update(active=False)
    Message.objects.filter(pk=message.pk).update(active=True)
    message.active = True


def _answer_placeholder(session: ChatSession, question: Message, model_name: str) -> Message:
    """The empty answer to `question`, marked streaming until it is written,
    with the provenance it is asked for with (sampling, preset version)."""
    # Read afresh: a page's socket may hold the session since before its settings changed.
    current = ChatSession.objects.select_related("preset").get(pk=session.pk)
    return _add_message(
        session,
        question,
        role=Message.Role.ASSISTANT,
        status=Message.Status.STREAMING,
        model_name=model_name,
        **generation_settings.provenance_for(current),
    )


def _add_message(session: ChatSession, parent: Message | None, **fields) -> Message:
    """Save a new message after `parent` as the shown version of its turn."""
    Message.objects.filter(session=session, parent=parent, active=True).update(active=False)
    return Message.objects.create(session=session, parent=parent, active=True, **fields)


@transaction.atomic
def message_send(
    *, session: ChatSession, content: str, attachment_ids=(), model_name: str = ""
) -> tuple[Message, Message]:
    """Save the user's message and an empty answer (status streaming) after it.

    The question follows the last message of the branch on show. Raise
    Rejected, saving nothing, when the message is empty, too long,
    carries too many or foreign images, or an answer is still being written.
    """
    content = content.strip()
    attachment_ids = _attachment_uuids(attachment_ids)
    attachments = list(
        Attachment.objects.select_for_update().filter(
            owner=session.owner, pk__in=attachment_ids, message__isnull=True
        )
    )
    # A slide's overview is shown, not given to the model: it counts as no image
    # (one no longer there counts as one, and is refused just below).
    missing = len(attachment_ids) - len(attachments)
    _check_question(content, sum(a.for_model for a in attachments) + missing)
    if len(attachments) != len(attachment_ids):
        raise Rejected("An attached image is no longer available; attach it again.")
    check_idle(session)

    path = selectors.active_path(session)
    limit = serving.config().max_history_messages
    if len(path) + 2 > limit:
        raise Rejected(
            f"This chat holds {len(path)} messages and the limit is {limit}; "
            "start a new chat to go on."
        )
    question = _add_message(
        session, path[-1] if path else None, role=Message.Role.USER, content=content
    )
    for attachment in attachments:
        attachment.message, attachment.session = question, session
        attachment.save(update_fields=["message", "session"])
    answer = _answer_placeholder(session, question, model_name)
    # Sent: the composer's draft of this chat is done with.
    Draft.objects.filter(owner=session.owner, session=session).delete()
    if not session.title:
        session.title = _title_from(content) or "Image analysis"
    session.save(update_fields=["title", "updated_at"])
    return question, answer


@transaction.atomic
def message_edit(
    *, message: Message, content: str, model_name: str = ""
) -> tuple[Message, Message]:
    """Save an edited question as a new version of `message`, and an empty answer to it.

    The original and everything that followed it stay, as the other branch.
    The new version keeps the original's images. Raise Rejected, saving
    nothing, for an answer, an empty or too long text, or while an answer is
    being written.
    """
    if message.role != Message.Role.USER:
        raise Rejected("Only questions can be edited; regenerate an answer instead.")
    session = message.session
    content = content.strip()
    originals = list(message.attachments.all())
    _check_question(content, sum(a.for_model for a in originals))
    check_idle(session)

    question = _add_message(session, message.parent, role=Message.Role.USER, content=content)
    for original in originals:
        # The same stored file, linked to the new version as well.
        Attachment.objects.create(
            owner=original.owner,
            session=session,
            message=question,
            file=original.file.name,
            content_type=original.content_type,
            width=original.width,
            height=original.height,
            size_bytes=original.size_bytes,
            label=original.label,
            dicom=original.dicom,
            prior_amount=original.prior_amount,
            prior_unit=original.prior_unit,
            batch=original.batch,
            for_model=original.for_model,
            volume=original.volume.name,
        )
    answer = _answer_placeholder(session, question, model_name)
    session.save(update_fields=["updated_at"])
    return question, answer


@transaction.atomic
def answer_regenerate(*, answer: Message, model_name: str = "") -> Message:
    """Save an empty new version of `answer` (status streaming) to be written again.

    The earlier version stays, reachable with the version switcher. Raise
    Rejected for a question, or while an answer is being written.
    """
    if answer.role != Message.Role.ASSISTANT:
        raise Rejected("Only answers can be regenerated; edit a question instead.")
    check_idle(answer.session)
    question = Message.objects.get(pk=answer.parent_id)
    new = _answer_placeholder(answer.session, question, model_name)
    answer.session.save(update_fields=["updated_at"])
    return new


@transaction.atomic
def answer_continue(*, answer: Message) -> Message:
    """Mark an answer cut off at its token budget as being written again, from
    where it stopped: the model goes on and the text is appended to the same
    answer, which keeps its provenance.

    Raise Rejected for anything but an answer that was cut off, or while
    an answer is being written.
    """
    if answer.role != Message.Role.ASSISTANT or answer.finish_reason != "length":
        raise Rejected("Only an answer cut off at its token limit can be continued.")
    if answer.status != Message.Status.COMPLETE or not answer.content:
        raise Rejected("Only an answer cut off at its token limit can be continued.")
    check_idle(answer.session)
    Message.objects.filter(pk=answer.pk).update(status=Message.Status.STREAMING, error="")
    answer.status = Message.Status.STREAMING
    answer.session.save(update_fields=["updated_at"])
    return answer


@transaction.atomic
def message_select(*, message: Message) -> None:
    """Show `message`'s version of its turn (and the branch that follows it).

    Raise Rejected while an answer is being written.
    """
    check_idle(message.session)
    _make_active(message)


@transaction.atomic
def message_delete(*, message: Message) -> None:
    """Delete a question with its answers, or one version of an answer.

    What followed the deleted message in its branch goes with it. An answer
    that is its question's only version takes the question with it. Another
    version of the turn, if any, is shown instead. The images of deleted
    messages are removed from disk. Raise Rejected while an answer is
    being written.
    """
    session = message.session
    check_idle(session)
    siblings = list(
        Message.objects.filter(session=session, parent_id=message.parent_id).order_by("id")
    )
    if message.role == Message.Role.ASSISTANT and len(siblings) == 1 and message.parent_id:
        message_delete(message=Message.objects.select_related("session").get(pk=message.parent_id))
        return
    if message.active and len(siblings) > 1:
        index = [s.pk for s in siblings].index(message.pk)
        _make_active(siblings[index - 1] if index > 0 else siblings[1])
    message.delete()  # with what followed it, and their images (chat.attachment_files)
    session.save(update_fields=["updated_at"])


def _attachment_uuids(values) -> list[uuid.UUID]:
    """Parse the ids a client sent; raise Rejected for anything else."""
    try:
        return list(dict.fromkeys(uuid.UUID(str(value)) for value in values if value))
    except ValueError:
        raise Rejected("An attached image is no longer available; attach it again.") from None
