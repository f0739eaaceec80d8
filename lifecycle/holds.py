"""Holds on chats: a legal or clinical review keeps a chat from deletion by retention."""

from __future__ import annotations

from django.utils import timezone

from audit.models import AuditEvent
from chat.models import ChatSession
from lifecycle import audit


def session_hold(*, session: ChatSession, by: str, reason: str = "") -> ChatSession:
    """Place a hold on `session` (kept as it is if one is already there)."""
    if session.held_at is None:
        session.held_at = timezone.now()
        session.held_by = by[:150]
        session.hold_reason = " ".join(reason.split())[:200]
        # Not activity: a hold does not move the chat's last activity (update_fields).
        session.save(update_fields=["held_at", "held_by", "hold_reason"])
        audit.record(
            AuditEvent.Action.SESSION_HOLD,
            actor=by,
            target=f"chatsession:{session.pk}",
            detail=session.hold_reason,
        )
    return session


def session_release(*, session: ChatSession, by: str) -> ChatSession:
    """Take the hold off `session`: retention may delete it again once it expires."""
    if session.held_at is not None:
        session.held_at = None
        session.held_by = ""
        session.hold_reason = ""
        session.save(update_fields=["held_at", "held_by", "hold_reason"])
        audit.record(
            AuditEvent.Action.SESSION_RELEASE, actor=by, target=f"chatsession:{session.pk}"
        )
    return session
