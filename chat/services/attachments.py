"""Writes of attached images: storing an upload, removing files nothing refers to."""

from __future__ import annotations

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from chat.images import clean_image
from chat.models import Attachment


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


def remove_unused_files(names: set[str]) -> None:
    """Once the deletion is committed, remove stored images no attachment refers to."""

    def remove() -> None:
        still_used = set(Attachment.objects.filter(file__in=names).values_list("file", flat=True))
        for name in names - still_used:
            default_storage.delete(name)

    if names:
        transaction.on_commit(remove)
