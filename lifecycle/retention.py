"""Retention: chats idle longer than `--retention-days` are deleted, once a day.

Kept whatever their age: chats with a clinician's review of any of their
answers, chats on hold (lifecycle.holds), and chats with an answer still being
written. Images uploaded but never sent go after the same time. Each pass is
logged and recorded in the audit trail with its counts, never the content.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import close_old_connections, connection, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from audit.models import AuditEvent
from chat.models import Attachment, ChatSession, Message
from lifecycle import audit
from reviews.models import AnswerReview

log = logging.getLogger(__name__)
PASS_EVERY = timedelta(days=1)


@dataclass(frozen=True)
class RetentionPass:
    """What one pass deleted."""

    chats: int
    messages: int
    images: int
    unsent_images: int

    def describe(self, days: int) -> str:
        return (
            f"{self.chats} chats idle for more than {days} days deleted, with "
            f"{self.messages} messages and {self.images} images; "
            f"{self.unsent_images} images never sent"
        )


def sessions_expired(*, days: int, now: datetime) -> QuerySet[ChatSession]:
    """Chats whose last activity is more than `days` days before `now`, that no
    review, hold or answer being written keeps."""
    reviewed = AnswerReview.objects.filter(message__session=OuterRef("pk"))
    writing = Message.objects.filter(session=OuterRef("pk"), status=Message.Status.STREAMING)
    return (
        ChatSession.objects.filter(updated_at__lt=now - timedelta(days=days), held_at__isnull=True)
        .exclude(Exists(reviewed))
        .exclude(Exists(writing))
    )


def retention_apply(*, days: int, now: datetime | None = None) -> RetentionPass:
    """Delete what has expired after `days` days, with its files; record the counts."""
    now = now or timezone.now()
    # One transaction, which takes SQLite's write lock up front (IMMEDIATE): no
    # message can join a chat between its selection and its deletion.
    with transaction.atomic():
        expired = list(sessions_expired(days=days, now=now).values_list("pk", flat=True))
        images = Attachment.objects.filter(message__session__in=expired)
        unsent = Attachment.objects.filter(
            message__isnull=True, created_at__lt=now - timedelta(days=days)
        )
        done = RetentionPass(
            chats=len(expired),
            messages=Message.objects.filter(session__in=expired).count(),
            images=images.count(),
            unsent_images=unsent.count(),
        )
        unsent.delete()
        # Their images' files go with the rows (chat.attachment_files), once this commits.
        ChatSession.objects.filter(pk__in=expired).delete()
        audit.record(AuditEvent.Action.RETENTION, actor=audit.SERVER, detail=done.describe(days))
    log.info("Retention: %s", done.describe(days))
    return done


class RetentionSchedule(threading.Thread):
    """Runs retention_apply at start, then every PASS_EVERY, until stopped."""

    def __init__(self, days: int, every: timedelta = PASS_EVERY) -> None:
        super().__init__(name="retention", daemon=True)
        self.days = days
        self.every = every
        self._halt = threading.Event()

    def run(self) -> None:
        while True:
            try:
                retention_apply(days=self.days)
            except Exception:  # a locked or full database: tried again at the next pass
                log.exception("Retention pass failed; trying again in %s", self.every)
            finally:
                close_old_connections()
                connection.close()
            if self._halt.wait(self.every.total_seconds()):
                return

    def stop(self) -> None:
        self._halt.set()


def retention_start(days: int) -> RetentionSchedule | None:
    """Start the daily pass when `days` is set (0: retention is off)."""
    if days <= 0:
        return None
    schedule = RetentionSchedule(days)
    schedule.start()
    log.info("Retention: chats idle for more than %d days are deleted daily", days)
    return schedule
