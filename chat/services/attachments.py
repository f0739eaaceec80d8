"""Writes of attached images: storing uploads, removing files nothing refers to.

An upload is an image (PNG, JPEG, WebP), a DICOM file, or a zip of DICOM files.
Images are stored cleaned; DICOM becomes one PNG per slice, labelled ("CT slice
12 of 120 (lung window)") and with its de-identified facts, a long series
sampled evenly to as many slices as one message can carry (chat.dicom_slices).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from chat import dicom, dicom_slices, generation_settings
from chat.archives import is_zip, zip_members
from chat.dicom_windows import AUTO
from chat.errors import MessageRejected
from chat.images import clean_image
from chat.models import Attachment, ChatSession


@dataclass
class Upload:
    """What an upload stored, and what the clinician should be told about it."""

    attachments: list[Attachment] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def attachment_create(*, owner, upload) -> Attachment:
    """Store an uploaded image (cleaned) as a pending attachment of `owner`.

    Raise MessageRejected when the file is not an acceptable image.
    """
    limits = settings.MEDSERVER
    raw = upload.read(limits.max_payload_bytes + 1)
    return _image_create(owner, raw, upload.name or "The image")


def attachments_upload(*, owner, session: ChatSession, uploads, window: str = AUTO) -> Upload:
    """Store `uploads` (images, DICOM files, zips of DICOM files) as pending
    attachments of `owner` for a message in `session`.

    DICOM series are rendered with `window` (chat.dicom_windows.WINDOW_CHOICES) and, when
    longer than `images_that_fit(session)` allows, sampled evenly. What can be
    stored is stored; the rest is said in `errors`, and sampling in `notices`.
    """
    limits = settings.MEDSERVER
    result = Upload()
    images: list[tuple[str, bytes]] = []
    files: list[dicom.DicomFile] = []
    for upload in uploads:
        name = upload.name or "The file"
        raw = upload.read(limits.max_payload_bytes + 1)
        try:
            if len(raw) > limits.max_payload_bytes:
                raise MessageRejected(f"{name} is larger than {limits.max_payload_mb} MB.")
            if is_zip(raw):
                members = zip_members(raw, name=name, max_bytes=limits.max_payload_bytes)
                files += [dicom.DicomFile(member.name, member.read) for member in members]
            elif dicom.is_dicom(raw) or name.lower().endswith(dicom.SUFFIXES):
                files.append(dicom.DicomFile(name, lambda raw=raw: raw, force=True))
            else:
                images.append((name, raw))
        except MessageRejected as rejected:
            result.errors.append(str(rejected))
    if len(images) > limits.max_image_count:
        # The first ones are attached, and the clinician is told which were left out.
        kept = limits.max_image_count
        result.notices.append(
            f"{len(images)} images chosen: the first {kept} are attached (at most {kept} a "
            f"message); send the other {len(images) - kept} with the next one."
        )
        images = images[:kept]
    for name, raw in images:
        try:
            result.attachments.append(_image_create(owner, raw, name))
        except MessageRejected as rejected:
            result.errors.append(str(rejected))
    if files:
        try:
            _series_create(owner, session, files, window, result)
        except MessageRejected as rejected:
            result.errors.append(str(rejected))
    return result


def images_that_fit(session: ChatSession) -> int:
    """How many images one message of `session` can show the model, with room
    for its answer (chat.dicom_slices.images_that_fit)."""
    return dicom_slices.images_that_fit(generation_settings.sampling_for(session).max_new_tokens)


def _series_create(owner, session, files, window: str, result: Upload) -> None:
    """Render the DICOM `files` as the slices that fit beside the images stored, and store them."""
    slices = dicom_slices.slices_for_message(
        files,
        answer_tokens=generation_settings.sampling_for(session).max_new_tokens,
        other_images=len(result.attachments),
        window=window,
    )
    result.notices += slices.notices
    with transaction.atomic():
        for piece in slices.rendered:
            attachment = Attachment(
                owner=owner,
                content_type="image/png",
                width=piece.width,
                height=piece.height,
                size_bytes=len(piece.png),
                label=piece.label,
                dicom=piece.facts,
            )
            attachment.file.save("slice.png", ContentFile(piece.png), save=False)
            attachment.save()
            result.attachments.append(attachment)


def _image_create(owner, raw: bytes, name: str) -> Attachment:
    limits = settings.MEDSERVER
    image = clean_image(raw, name=name, max_bytes=limits.max_payload_bytes)
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
