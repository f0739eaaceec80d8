"""Writes of composer drafts: what a clinician typed and attached but has not sent."""

from __future__ import annotations

import uuid

from chat import serving
from chat.errors import Rejected
from chat.models import Attachment, ChatSession, Draft

MAX_DRAFT_ATTACHMENTS = 1000  # more than any message may carry: a bound, not a rule
# A draft may run over the message limit (the composer says so); this far, no further.
DRAFT_LENGTH_FACTOR = 4


def draft_save(*, session: ChatSession, text: str, attachment_ids=()) -> Draft | None:
    """Keep the composer's text and pending images of `session` for its owner.

    Only the owner's images not yet sent are kept; an empty composer deletes
    the draft (and returns None). Text longer than a message may be is kept as
    it is: the composer says it is too long, the server loses none of it, up to
    DRAFT_LENGTH_FACTOR times the limit; beyond that raise Rejected.
    """
    limit = serving.config().max_text_length * DRAFT_LENGTH_FACTOR
    if len(text) > limit:
        raise Rejected(f"The draft is {len(text):,} characters long; it can keep {limit:,}.")
    ids = _pending_ids(session, attachment_ids)
    if not text.strip() and not ids:
        draft_clear(session=session)
        return None
    draft, _ = Draft.objects.update_or_create(
        owner=session.owner, session=session, defaults={"text": text, "attachment_ids": ids}
    )
    return draft


def draft_clear(*, session: ChatSession) -> None:
    """Forget the draft of `session` (it was sent, or emptied)."""
    Draft.objects.filter(owner=session.owner, session=session).delete()


def _pending_ids(session: ChatSession, values) -> list[str]:
    wanted = []
    for value in list(values)[:MAX_DRAFT_ATTACHMENTS]:
        try:
            wanted.append(uuid.UUID(str(value)))
        except ValueError:
            continue  # a stale or forged id: nothing to keep
    found = Attachment.objects.filter(
        owner=session.owner, pk__in=wanted, message__isnull=True
    ).values_list("pk", flat=True)
    kept = set(found)
    return [str(pk) for pk in wanted if pk in kept]
