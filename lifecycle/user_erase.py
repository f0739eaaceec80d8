"""`manage.py erase_user`: everything of one user deleted, files and database pages included.

Deleted: their chats with every message and image, images never sent, presets,
API tokens, the reviews they wrote, their sign-in sessions and the admin log's
entries about their records. The account stays as an inactive, nameless stub
("erased-<id>") that cannot sign in: the audit trail is append-only and points
at it, and the audit trail gains one row saying who erased whom, when, and how
much, without any of the content.

Deleted rows can live on in SQLite's free pages and write-ahead log, so the
deletes run with secure_delete, then the database is rebuilt (VACUUM) and its
log emptied (wal_checkpoint(TRUNCATE)). The automatic backups in the data dir
(lifecycle.upgrade, lifecycle.restore) hold the user's data too and are removed;
backups written elsewhere with `medserver backup` are the operator's to expire.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.models import Session
from django.db import connection, transaction

from api.models import ApiToken
from audit.models import AuditEvent
from chat.models import Attachment, ChatSession, Message, Preset
from lifecycle import audit
from lifecycle.restore import BACKUPS_FOLDER
from reviews.models import AnswerReview


@dataclass
class Erasure:
    """What an erasure deleted, counted."""

    chats: int = 0
    messages: int = 0
    images: int = 0
    presets: int = 0
    reviews: int = 0
    api_tokens: int = 0
    sign_in_sessions: int = 0
    backups_removed: list[Path] = field(default_factory=list)
    log_emptied: bool = True

    def describe(self) -> str:
        return (
            f"{self.chats} chats, {self.messages} messages, {self.images} images, "
            f"{self.presets} presets, {self.reviews} reviews written, "
            f"{self.api_tokens} API tokens, {self.sign_in_sessions} sign-in sessions"
        )


def user_erase(*, user, actor: str) -> Erasure:
    """Delete everything of `user` (see the module's description); `actor` is who asked."""
    erased = Erasure()
    user_id, name = user.pk, user.get_username()
    with connection.cursor() as cursor:
        # Freed pages are overwritten with zeros as rows are deleted.
        cursor.execute("PRAGMA secure_delete = ON")
    with transaction.atomic():
        sessions = ChatSession.objects.filter(owner=user)
        messages = Message.objects.filter(session__owner=user)
        attachments = Attachment.objects.filter(owner=user)
        presets = Preset.objects.filter(owner=user)
        reviews = AnswerReview.objects.filter(reviewer=user)
        _admin_log_forget(
            user,
            {
                ChatSession: list(sessions.values_list("pk", flat=True)),
                Message: list(messages.values_list("pk", flat=True)),
                Attachment: list(attachments.values_list("pk", flat=True)),
                Preset: list(presets.values_list("pk", flat=True)),
                AnswerReview: list(reviews.values_list("pk", flat=True)),
                type(user): [user_id],  # entries about the account name it
            },
        )
        erased.chats = sessions.count()
        erased.messages = messages.count()
        erased.images = attachments.count()
        erased.presets = presets.count()
        erased.reviews = reviews.count()
        erased.api_tokens = ApiToken.objects.filter(owner=user).count()
        reviews.delete()
        sessions.delete()
        # Their files go with the rows (chat.attachment_files), once this commits.
        attachments.delete()
        presets.delete()
        ApiToken.objects.filter(owner=user).delete()
        erased.sign_in_sessions = _sign_in_sessions_end(user_id)
        _account_scrub(user)
        audit.record(
            AuditEvent.Action.USER_ERASE,
            actor=actor,
            target=f"user:{user_id}",
            detail=f"erased {name}: {erased.describe()}",
        )
    # Anything left in their uploads folder (files of rows deleted before) goes too.
    shutil.rmtree(Path(settings.MEDIA_ROOT) / "attachments" / str(user_id), ignore_errors=True)
    erased.backups_removed = _automatic_backups_remove()
    erased.log_emptied = database_compact()
    return erased


def database_compact() -> bool:
    """Rebuild the database without its free pages and empty its write-ahead log.

    Return False when a reader (a running MedServer) kept the log from being
    emptied whole; what remains in it is overwritten as the server writes on.
    """
    with connection.cursor() as cursor:
        cursor.execute("VACUUM")
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        busy = cursor.fetchone()[0]
    return busy == 0


def _admin_log_forget(user, ids_by_model: dict) -> None:
    """Admin log entries name the records they touched (a chat's title, say)."""
    LogEntry.objects.filter(user=user).delete()
    for model, ids in ids_by_model.items():
        if ids:
            kind = ContentType.objects.get_for_model(model)
            LogEntry.objects.filter(
                content_type=kind, object_id__in=[str(pk) for pk in ids]
            ).delete()


def _sign_in_sessions_end(user_id: int) -> int:
    ended = 0
    for session in Session.objects.all():
        if session.get_decoded().get("_auth_user_id") == str(user_id):
            session.delete()
            ended += 1
    return ended


def _account_scrub(user) -> None:
    user.username = f"erased-{user.pk}"
    user.first_name = user.last_name = user.email = ""
    user.is_active = user.is_staff = user.is_superuser = False
    user.last_login = None
    user.set_unusable_password()
    user.save()
    user.groups.clear()
    user.user_permissions.clear()


def _automatic_backups_remove() -> list[Path]:
    folder = Path(settings.DATA_DIR) / BACKUPS_FOLDER
    removed = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
        removed.append(path)
    return removed
