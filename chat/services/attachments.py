"""Writes of attached images: storing uploads (their files go with their rows,
see chat.attachment_files).

An upload is an image (PNG, JPEG, WebP), a PDF, a DICOM file, or a zip of DICOM
files. Images are stored cleaned; a PDF becomes one PNG per page ("Document page 1
of 3"), nothing else of it kept (imaging.documents); DICOM becomes one PNG per slice,
labelled ("CT slice 12 of 120 (lung window)") and with its de-identified facts, a
long series sampled evenly to as many slices as one message can carry, the
whole series kept for the viewer and for choosing other slices
(chat.services.series). Uploads are named in messages by their place ("Upload 2",
"upload 2, file 4"), never by their file name, which often holds the patient's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction

from chat import generation_settings, serving
from chat.errors import MessageRejected
from chat.models import Attachment, ChatSession
from chat.services.series import series_create
from imaging import ImageRejected, dicom, documents
from imaging.archives import is_zip, zip_members
from imaging.dicom.windows import AUTO
from imaging.images import clean_image


@dataclass
class Upload:
    """What an upload stored, and what the clinician should be told about it."""

    attachments: list[Attachment] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def attachment_create(*, owner, upload, session: ChatSession | None = None) -> Attachment:
    """Store an uploaded image (cleaned) as a pending attachment of `owner` in
    `session` (deleted with it unless sent).

    Raise MessageRejected when the file is not an acceptable image.
    """
    limits = settings.MEDSERVER
    raw = upload.read(limits.max_payload_bytes + 1)
    return _image_create(owner, session, raw, "The file")


def attachments_upload(*, owner, session: ChatSession, uploads, window: str = AUTO) -> Upload:
    """Store `uploads` (images, PDFs, DICOM files, zips of DICOM files) as pending
    attachments of `owner` for a message in `session`.

    DICOM series are rendered with `window` (imaging.dicom.windows.WINDOW_CHOICES) and, when
    longer than `images_that_fit(session)` allows, sampled evenly. What can be
    stored is stored; the rest is said in `errors`, and sampling in `notices`.
    """
    limits = settings.MEDSERVER
    result = Upload()
    images: list[tuple[str, bytes]] = []
    pdfs: list[tuple[str, bytes]] = []
    files: list[dicom.DicomFile] = []
    for number, upload in enumerate(uploads, 1):
        # Named by its place, never its file name, which often holds the patient's.
        name = f"Upload {number}"
        raw = upload.read(limits.max_payload_bytes + 1)
        try:
            if len(raw) > limits.max_payload_bytes:
                raise MessageRejected(f"{name} is larger than {limits.max_payload_mb} MB.")
            if is_zip(raw):
                members = zip_members(raw, name=name, max_bytes=limits.max_payload_bytes)
                files += [dicom.DicomFile(member.name, member.read) for member in members]
            elif dicom.is_dicom(raw) or (upload.name or "").lower().endswith(dicom.SUFFIXES):
                files.append(dicom.DicomFile(name, lambda raw=raw: raw, force=True))
            elif documents.is_pdf(raw):
                pdfs.append((name, raw))
            else:
                images.append((name, raw))
        except (MessageRejected, ImageRejected) as rejected:
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
            result.attachments.append(_image_create(owner, session, raw, name))
        except (MessageRejected, ImageRejected) as rejected:
            result.errors.append(str(rejected))
    for name, raw in pdfs:
        try:
            _pages_create(owner, session, name, raw, result)
        except (MessageRejected, ImageRejected) as rejected:
            result.errors.append(str(rejected))
    if files:
        try:
            stored = series_create(
                owner=owner,
                session=session,
                files=files,
                window=window,
                other_images=len(result.attachments),
            )
        except (MessageRejected, ImageRejected) as rejected:
            result.errors.append(str(rejected))
        else:
            result.attachments += stored.attachments
            result.notices += stored.notices
    return result


def images_that_fit(session: ChatSession) -> int:
    """How many images one message of `session` can show the model, with room
    for its answer (imaging.ImageBudget.images_that_fit)."""
    return serving.image_budget().images_that_fit(
        generation_settings.sampling_for(session).max_new_tokens
    )


def _pages_create(owner, session, name: str, raw: bytes, result: Upload) -> None:
    """Render the pages of the PDF `raw` that fit beside what is stored, and store them."""
    document, notices = documents.pages_for_message(
        raw,
        budget=serving.image_budget(),
        name=name,
        answer_tokens=generation_settings.sampling_for(session).max_new_tokens,
        other_images=len(result.attachments),
    )
    result.notices += notices
    with transaction.atomic():
        for page in document.pages:
            attachment = Attachment(
                owner=owner,
                session=session,
                content_type="image/png",
                width=page.width,
                height=page.height,
                size_bytes=len(page.png),
                label=page.label,
            )
            attachment.file.save("page.png", ContentFile(page.png), save=False)
            attachment.save()
            result.attachments.append(attachment)


def _image_create(owner, session, raw: bytes, name: str) -> Attachment:
    limits = settings.MEDSERVER
    image = clean_image(raw, name=name, max_bytes=limits.max_payload_bytes)
    attachment = Attachment(
        owner=owner,
        session=session,
        content_type=image.content_type,
        width=image.width,
        height=image.height,
        size_bytes=len(image.data),
    )
    attachment.file.save(f"image{image.extension}", ContentFile(image.data), save=False)
    attachment.save()
    return attachment
