"""Attachment files on disk follow their rows: deleting a row deletes its file.

However the rows go (a chat or message deleted, a user deleted with admin's
cascade, a QuerySet's delete(), retention), each Attachment's post_delete
removes its file once the deletion is committed, unless another row still
refers to it (an edited question keeps its original's images; the slices of
a series share the series' kept values, Attachment.volume). A deleted
user's upload folder goes as a whole. Unsent uploads older than a day, and
files no row refers to, are removed when the server starts.
"""

from __future__ import annotations

import datetime
import logging
import shutil
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from chat.models import Attachment

log = logging.getLogger(__name__)

UNSENT_KEPT_FOR = datetime.timedelta(days=1)
_FOLDER = "attachments"


def remove_unused(names: set[str]) -> None:
    """Once the current transaction commits, delete the stored files among
    `names` that no attachment refers to any more."""

    def remove() -> None:
        still_used = set(Attachment.objects.filter(file__in=names).values_list("file", flat=True))
        still_used |= set(
            Attachment.objects.filter(volume__in=names).values_list("volume", flat=True)
        )
        for name in names - still_used:
            default_storage.delete(name)

    if names:
        transaction.on_commit(remove)


@receiver(post_delete, sender=Attachment)
def _attachment_deleted(sender, instance: Attachment, **kwargs) -> None:
    # Connected for QuerySet deletes and cascades too: Django then deletes
    # row by row instead of in one fast DELETE.
    names = {field.name for field in (instance.file, instance.volume) if field.name}
    if names:
        remove_unused(names)


@receiver(post_delete, sender=settings.AUTH_USER_MODEL)
def _user_deleted(sender, instance, **kwargs) -> None:
    folder = Path(settings.MEDIA_ROOT) / _FOLDER / str(instance.pk)
    transaction.on_commit(lambda: shutil.rmtree(folder, ignore_errors=True))


def remove_stale_uploads(*, now: datetime.datetime | None = None) -> int:
    """Delete uploads never sent with a message and older than UNSENT_KEPT_FOR,
    and files under the upload folder that no attachment refers to (left by a
    crash), as old. Return how many files went."""
    now = now or timezone.now()
    cutoff = now - UNSENT_KEPT_FOR
    stale = Attachment.objects.filter(message__isnull=True, created_at__lt=cutoff)
    names = set(stale.values_list("file", flat=True))
    names |= {name for name in stale.values_list("volume", flat=True) if name}
    with transaction.atomic():
        stale.delete()
    root = Path(settings.MEDIA_ROOT) / _FOLDER
    if not root.is_dir():
        return len(names)
    known = set(Attachment.objects.values_list("file", flat=True))
    known |= set(Attachment.objects.values_list("volume", flat=True))
    orphans = 0
    for path in root.rglob("*"):
        name = path.relative_to(settings.MEDIA_ROOT).as_posix()
        if path.is_file() and name not in known and path.stat().st_mtime < cutoff.timestamp():
            path.unlink(missing_ok=True)
            orphans += 1
    for folder in root.iterdir():  # the folders of users with nothing left
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return len(names) + orphans
