"""Writes of attached images: storing uploads (their files go with their rows,
see chat.attachment_files), and marking them as a prior study.

An upload is an image (PNG, JPEG, WebP), a PDF, a DICOM file, a zip of DICOM
files, or a whole-slide image. Images are stored cleaned; a PDF becomes one PNG
per page ("Document page 1 of 3"), nothing else of it kept (imaging.documents);
DICOM becomes one PNG per slice, labelled ("CT slice 12 of 120 (lung window)")
and with its de-identified facts, a long series sampled evenly to as many slices
as one message can carry, the whole series kept for the viewer and for choosing
other slices (chat.services.series); when the DICOM of one upload holds studies
of different dates, the older ones are stored as prior studies with their
interval only (imaging.priors). A slide becomes its tissue patches and an
overview for the clinician, its label and macro images never read
(imaging.slides). The images stored from one upload share a `batch`, so that a
series is marked as a prior study at once. Uploads are named in messages by
their place ("Upload 2", "upload 2, file 4"), never by their file name, which
often holds the patient's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from django.core.files.base import ContentFile
from django.db import transaction

from chat import generation_settings, serving
from chat.errors import Rejected
from chat.models import Attachment, ChatSession
from chat.services.rendered_images import rendered_attachment
from chat.services.series import series_create
from imaging import ImageRejected, dicom, documents, slides
from imaging.archives import is_zip, zip_members
from imaging.dicom.windows import AUTO
from imaging.images import clean_image
from imaging.priors import Interval


@dataclass
class Upload:
    """What an upload stored, and what the clinician should be told about it."""

    attachments: list[Attachment] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def attachment_create(*, owner, upload, session: ChatSession | None = None) -> Attachment:
    """Store an uploaded image (cleaned) as a pending attachment of `owner` in
    `session` (deleted with it unless sent).

    Raise Rejected when the file is not an acceptable image.
    """
    config = serving.config()
    raw = upload.read(config.max_payload_bytes + 1)
    try:
        return _image_create(owner, session, raw, "The file")
    except ImageRejected as rejected:
        raise Rejected(str(rejected)) from None


def attachments_upload(
    *,
    owner,
    session: ChatSession,
    uploads,
    window: str = AUTO,
    magnification: str = slides.DEFAULT_MAGNIFICATION,
) -> Upload:
    """Store `uploads` (images, PDFs, DICOM files, zips of DICOM files, slides) as
    pending attachments of `owner` for a message in `session`.

    DICOM series are rendered with `window` (imaging.dicom.windows.WINDOW_CHOICES) and, when
    longer than `images_that_fit(session)` allows, sampled evenly; slides give
    patches at `magnification` (a key of imaging.slides.MAGNIFICATIONS). What can
    be stored is stored; the rest is said in `errors`, and sampling in `notices`.
    """
    config = serving.config()
    result = Upload()
    images: list[tuple[str, bytes]] = []
    pdfs: list[tuple[str, bytes]] = []
    slide_files: list[tuple[str, bytes]] = []
    files: list[dicom.DicomFile] = []
    for number, upload in enumerate(uploads, 1):
        # Named by its place, never its file name, which often holds the patient's.
        name = f"Upload {number}"
        raw = upload.read(config.max_payload_bytes + 1)
        try:
            if len(raw) > config.max_payload_bytes:
                raise Rejected(f"{name} is larger than {config.max_payload_mb} MB.")
            if is_zip(raw):
                members = zip_members(raw, name=name, max_bytes=config.max_payload_bytes)
                files += [dicom.DicomFile(member.name, member.read) for member in members]
            elif dicom.is_dicom(raw) or (upload.name or "").lower().endswith(dicom.SUFFIXES):
                files.append(dicom.DicomFile(name, lambda raw=raw: raw, force=True))
            elif documents.is_pdf(raw):
                pdfs.append((name, raw))
            elif slides.is_slide(raw, upload.name or ""):
                slide_files.append((name, raw))
            else:
                images.append((name, raw))
        except (Rejected, ImageRejected) as rejected:
            result.errors.append(str(rejected))
    if len(images) > config.max_image_count:
        # The first ones are attached, and the clinician is told which were left out.
        kept = config.max_image_count
        result.notices.append(
            f"{len(images)} images chosen: the first {kept} are attached (at most {kept} a "
            f"message); send the other {len(images) - kept} with the next one."
        )
        images = images[:kept]
    for name, raw in images:
        try:
            result.attachments.append(_image_create(owner, session, raw, name))
        except (Rejected, ImageRejected) as rejected:
            result.errors.append(str(rejected))
    for name, raw in pdfs:
        try:
            _pages_create(owner, session, name, raw, result)
        except (Rejected, ImageRejected) as rejected:
            result.errors.append(str(rejected))
    for name, raw in slide_files:
        try:
            _patches_create(owner, session, name, raw, magnification, result)
        except (Rejected, ImageRejected) as rejected:
            result.errors.append(str(rejected))
    if files:
        try:
            stored = series_create(
                owner=owner,
                session=session,
                files=files,
                window=window,
                other_images=sum(a.for_model for a in result.attachments),
            )
        except (Rejected, ImageRejected) as rejected:
            result.errors.append(str(rejected))
        else:
            result.attachments += stored.attachments
            result.notices += stored.notices
    return result


def attachments_mark_study(*, owner, attachment_id, prior: Interval | None) -> list[Attachment]:
    """Mark the pending image `attachment_id` of `owner`, and every image stored
    with it (a series, a document's pages, a slide's patches), as a prior study
    taken `prior` before the current one, or (None) as the current study.
    Return them; raise Attachment.DoesNotExist for anyone else's, or a sent one."""
    attachment = Attachment.objects.get(owner=owner, pk=attachment_id, message__isnull=True)
    together = Attachment.objects.filter(owner=owner, message__isnull=True)
    if attachment.batch is not None:
        together = together.filter(batch=attachment.batch)
    else:
        together = together.filter(pk=attachment.pk)
    together.update(
        prior_amount=prior.amount if prior else None, prior_unit=prior.unit if prior else ""
    )
    return list(together.order_by("created_at"))


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
        other_images=sum(a.for_model for a in result.attachments),
    )
    result.notices += notices
    batch = uuid.uuid4()
    with transaction.atomic():
        for page in document.pages:
            result.attachments.append(
                rendered_attachment(
                    owner=owner,
                    session=session,
                    png=page.png,
                    size=(page.width, page.height),
                    label=page.label,
                    filename="page.png",
                    batch=batch,
                )
            )


def _patches_create(owner, session, name: str, raw: bytes, magnification: str, result) -> None:
    """Store the overview of the slide `raw` (shown to the clinician, never given
    to the model), then its tissue patches that fit beside what is stored."""
    found = slides.patches_for_message(
        raw,
        name=name,
        budget=serving.image_budget(),
        answer_tokens=generation_settings.sampling_for(session).max_new_tokens,
        other_images=sum(a.for_model for a in result.attachments),
        magnification=magnification,
    )
    result.notices += found.notices
    batch = uuid.uuid4()
    side = slides.PATCH_PX
    # The overview first: it says where the patches after it come from.
    overview = {"kind": "slide overview", "patches": len(found.patches)}
    pieces = [(found.overview_png, found.overview_label, overview, False, found.overview_size)]
    pieces += [(p.png, p.label, p.facts, True, (side, side)) for p in found.patches]
    with transaction.atomic():
        for png, label, facts, for_model, size in pieces:
            result.attachments.append(
                rendered_attachment(
                    owner=owner,
                    session=session,
                    png=png,
                    size=size,
                    label=label,
                    filename="slide.png",
                    dicom=facts,
                    batch=batch,
                    for_model=for_model,
                )
            )


def _image_create(owner, session, raw: bytes, name: str) -> Attachment:
    config = serving.config()
    image = clean_image(raw, name=name, max_bytes=config.max_payload_bytes)
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
