"""The images of an API message: PNG, JPEG and WebP images, PDFs, DICOM files, zips of DICOM files.

A part comes as a base64 data URI (/api/chat, /v1/chat/completions) or as an
uploaded file (/api/analyze). What it is comes from its bytes: "DICM" at byte
128 is DICOM, a zip's signature is a zip; a part typed application/dicom (or an
upload named .dcm) is read as DICOM even without the preamble. The DICOM parts
of one message are read together, as the chat page reads one upload: a series
may come as a zip or as one part per file, and becomes the slices that fit
(imaging.dicom.slices), rendered with the window asked for, each with its label
for the model. A PDF becomes its pages as images ("Document page 1 of 3") in its
place, as many as fit (imaging.documents), nothing else of the file kept. A
whole-slide image (SVS, tiled TIFF…) becomes its tissue patches at 10× in its
place, as many as fit (imaging.slides), never its label or macro image; the
overview the page shows is not sent. When the DICOM of a message holds studies
of different dates, the older are prior studies: every image then comes in
study order, labelled with its study and interval, never a date (imaging.priors).
Other images are cleaned as the page cleans them.

Nothing of a DICOM header reaches a response: labels and notices are built from
the allow-listed facts only, and files are named by their place ("messages[0]
image 1", "upload 2", and in a zip "messages[0] image 1, file 3"), never by
their name or path, which often holds the patient's name.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

from api.errors import ApiError
from chat import serving
from imaging import ImageRejected, dicom, documents, priors, slides
from imaging.archives import MAX_MEMBERS, ArchiveTooLarge, is_zip, zip_members
from imaging.dicom.slices import slices_for_message
from imaging.dicom.windows import AUTO
from imaging.images import ImageTooLarge, ImageUnsupported, clean_image

_DATA_URI = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?:;[^,;]*)*;base64,", re.I)
IMAGE_TYPES = {"image/png", "image/jpeg", "image/jpg", "image/webp"}
DICOM_TYPES = {"application/dicom"}
ZIP_TYPES = {"application/zip", "application/x-zip-compressed"}
PDF_TYPES = {"application/pdf"}
SLIDE_TYPES = {"image/tiff"}  # SVS and most slide formats are TIFF; others come untyped
# Accepted as sent by clients that do not know what a file is; its bytes say.
_UNTYPED = {"application/octet-stream"}
# Slides (image/tiff, or untyped) are taken too; this sentence is the one clients know.
_WHAT_IS_ACCEPTED = "a PNG, JPEG or WebP image, a PDF, a DICOM file or a zip of DICOM files"


@dataclass(frozen=True)
class Part:
    """One image part of a message as the client sent it. `where` names it in messages."""

    where: str
    raw: bytes
    media_type: str = ""  # as declared: a data URI's type, an upload's content type


@dataclass(frozen=True)
class MessageImages:
    """A message's images for the model, their labels ("" for none), and what to tell the client."""

    images: tuple[bytes, ...] = ()
    labels: tuple[str, ...] = ()
    notices: tuple[str, ...] = ()


def part_from_data_uri(uri: str, where: str) -> Part:
    """Read a base64 data URI; refuse it (ApiError) before decoding when it is
    not inline, of a type not accepted, or over the upload limit."""
    match = _DATA_URI.match(uri)
    if not match:
        raise ApiError(
            422,
            f"{where} must be sent inline as a base64 data URI "
            "(data:image/png;base64,...); MedServer does not fetch URLs.",
        )
    media_type = (match.group("type") or "").lower()
    if media_type not in IMAGE_TYPES | PDF_TYPES | DICOM_TYPES | ZIP_TYPES | SLIDE_TYPES | _UNTYPED:
        raise ApiError(415, f"{where} must be {_WHAT_IS_ACCEPTED}.")
    encoded = uri[match.end() :]
    max_bytes = serving.config().max_payload_bytes
    if len(encoded) * 3 // 4 > max_bytes + 3:  # refused before decoding anything
        raise ApiError(413, f"{where} is larger than {max_bytes // 1048576} MB.")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, f"{where} is not valid base64.") from None
    return Part(where, raw, media_type)


def part_from_upload(upload, where: str) -> Part:
    """Read an uploaded file, named `where` in messages ("upload 2": its file
    name often holds the patient's); refuse it (ApiError 413) over the upload
    limit before reading."""
    config = serving.config()
    if upload.size > config.max_payload_bytes:
        raise ApiError(413, f"{where} is larger than {config.max_payload_mb} MB.")
    media_type = (upload.content_type or "").lower()
    if (upload.name or "").lower().endswith(dicom.SUFFIXES):
        media_type = "application/dicom"
    return Part(where, upload.read(), media_type)


def message_images(
    parts: list[Part],
    *,
    where: str,
    answer_tokens: int,
    window: str = AUTO,
    param: str | None = None,
) -> MessageImages:
    """Return the images of one message, DICOM rendered as labelled slices where
    its first DICOM part was, a series longer than fits sampled evenly.

    `answer_tokens` is the room kept for the answer; `where` names the message
    in refusals, `param` (by default `where`) is the field they point at. Raise
    ApiError: 413 over a limit, 415 a format not accepted, 422 a file that
    cannot be read, more images than a message may carry, several series that
    do not fit together.
    """
    config = serving.config()
    param = param or where
    images: list[Part] = []
    # PDFs and slides, in order, each with the number of images before it.
    expanded: list[tuple[int, Part]] = []
    files: list[dicom.DicomFile] = []
    slices_at = None
    with _refusals(param):
        for part in parts:
            if _is_pdf(part) or slides.is_slide(part.raw):
                expanded.append((len(images), part))
                continue
            if _is_image(part):
                images.append(part)
                continue
            if slices_at is None:
                slices_at = len(images)
            files += _dicom_files(part)
    if len(images) > config.max_image_count:
        raise ApiError(
            422,
            f"{where} carries {len(images)} images; at most {config.max_image_count} per message.",
            param=param,
        )
    if len(files) > MAX_MEMBERS:
        raise ApiError(
            422,
            f"{where} carries {len(files):,} DICOM files; at most {MAX_MEMBERS:,} per message.",
            param=param,
        )
    cleaned = [_clean(part) for part in images]
    labels = [""] * len(cleaned)
    notices: list[str] = []
    added = 0
    # Documents and slides become their pages and patches, in the place they came.
    for at, part in expanded:
        with _refusals(param):
            pngs, part_labels, said = _pages_or_patches(
                part, answer_tokens=answer_tokens, other_images=len(cleaned)
            )
        place = at + added
        cleaned[place:place] = pngs
        labels[place:place] = part_labels
        notices += said
        added += len(pngs)
        if slices_at is not None and at <= slices_at:
            slices_at += len(pngs)
    if not files:
        return MessageImages(tuple(cleaned), tuple(labels), tuple(notices))
    with _refusals(param):
        slices = slices_for_message(
            files,
            budget=serving.image_budget(),
            answer_tokens=answer_tokens,
            other_images=len(cleaned),
            window=window,
        )
    studies: list[priors.Interval | None] = [None] * len(cleaned)
    cleaned[slices_at:slices_at] = [piece.png for piece in slices.rendered]
    labels[slices_at:slices_at] = [piece.label for piece in slices.rendered]
    studies[slices_at:slices_at] = [piece.prior for piece in slices.rendered]
    # Prior studies first, oldest first, each image labelled with its study.
    ordered = priors.in_study_order(
        list(range(len(cleaned))), lambda i: studies[i], lambda i: labels[i]
    )
    return MessageImages(
        tuple(cleaned[i] for i, _ in ordered),
        tuple(label for _, label in ordered),
        tuple(notices + slices.notices),
    )


def _is_pdf(part: Part) -> bool:
    return documents.is_pdf(part.raw) or part.media_type in PDF_TYPES


def _is_image(part: Part) -> bool:
    if is_zip(part.raw) or part.media_type in ZIP_TYPES:
        return False
    return not (dicom.is_dicom(part.raw) or part.media_type in DICOM_TYPES)


def _dicom_files(part: Part) -> list[dicom.DicomFile]:
    if is_zip(part.raw) or part.media_type in ZIP_TYPES:
        members = zip_members(
            part.raw, name=part.where, max_bytes=serving.config().max_payload_bytes
        )
        return [dicom.DicomFile(member.name, member.read) for member in members]
    # Typed as DICOM, it is read even without the "DICM" preamble, as a .dcm upload is.
    return [dicom.DicomFile(part.where, lambda raw=part.raw: raw, force=True)]


def _clean(part: Part) -> bytes:
    try:
        max_bytes = serving.config().max_payload_bytes
        return clean_image(part.raw, name=part.where, max_bytes=max_bytes).data
    except ImageTooLarge as error:
        raise ApiError(413, str(error)) from None
    except ImageUnsupported as error:
        raise ApiError(415, str(error)) from None
    except ImageRejected as error:
        raise ApiError(422, str(error)) from None


@contextlib.contextmanager
def _refusals(param: str) -> Iterator[None]:
    """Turn refusals of DICOM files and zips into ApiErrors pointing at `param`."""
    try:
        yield
    except ArchiveTooLarge as error:
        raise ApiError(413, str(error), param=param, code="archive_too_large") from None
    except dicom.DicomRejected as error:
        raise ApiError(422, str(error), param=param, code="dicom_rejected") from None
    except documents.DocumentRejected as error:
        raise ApiError(422, str(error), param=param, code="document_rejected") from None
    except slides.SlideRejected as error:
        raise ApiError(422, str(error), param=param, code="slide_rejected") from None
    except ImageRejected as error:  # a damaged or encrypted zip
        raise ApiError(422, str(error), param=param, code="invalid_archive") from None


def _pages_or_patches(
    part: Part, *, answer_tokens: int, other_images: int
) -> tuple[list[bytes], list[str], list[str]]:
    """A PDF's pages or a slide's tissue patches as they fit beside `other_images`:
    their PNGs, labels, and what the client should be told."""
    if _is_pdf(part):
        document, said = documents.pages_for_message(
            part.raw,
            name=part.where,
            budget=serving.image_budget(),
            answer_tokens=answer_tokens,
            other_images=other_images,
        )
        return [p.png for p in document.pages], [p.label for p in document.pages], said
    found = slides.patches_for_message(
        part.raw,
        name=part.where,
        budget=serving.image_budget(),
        answer_tokens=answer_tokens,
        other_images=other_images,
    )
    return [p.png for p in found.patches], [p.label for p in found.patches], found.notices
