"""Removing the stored files of deleted image rows.

Deleting Attachment rows through the ORM may remove their files by itself (a
post_delete signal); this removes them all the same, once the deletion is
committed, so that no deletion of patient data depends on it.
"""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.db import transaction

from chat.models import Attachment


def attachment_files_remove(names: set[str]) -> None:
    """Once the current transaction commits, remove the files `names` that no image
    row points at any more (now, if no transaction is open)."""

    def remove() -> None:
        still_used = set(Attachment.objects.filter(file__in=names).values_list("file", flat=True))
        for name in names - still_used:
            default_storage.delete(name)

    if names:
        transaction.on_commit(remove)
