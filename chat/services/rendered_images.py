"""Storing an image MedServer rendered (a DICOM slice, a document page, a slide's
patch or overview) as a pending attachment: a PNG of pixels only."""

from __future__ import annotations

from django.core.files.base import ContentFile

from chat.models import Attachment, ChatSession


def rendered_attachment(
    *,
    owner,
    session: ChatSession,
    png: bytes,
    size: tuple[int, int],
    label: str,
    filename: str,
    save: bool = True,
    **fields,
) -> Attachment:
    """Store `png` (`size` = width, height) as a pending attachment of `owner` in
    `session`, labelled `label`, with the Attachment `fields` given (its DICOM
    facts, its upload's batch, its prior interval...). With `save` False the row
    is not saved yet (its file is)."""
    width, height = size
    attachment = Attachment(
        owner=owner,
        session=session,
        content_type="image/png",
        width=width,
        height=height,
        size_bytes=len(png),
        label=label,
        **fields,
    )
    attachment.file.save(filename, ContentFile(png), save=False)
    if save:
        attachment.save()
    return attachment
