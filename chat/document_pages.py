"""The pages of a PDF that one message carries, sized by the same limits as DICOM slices.

The chat page stores them as attachments (chat.services.attachments); the APIs
hand them to the model as they are (chat.api.message_images). A document longer
than fits is cut to its first pages, and the clinician is told.
"""

from __future__ import annotations

from django.conf import settings

from chat import dicom_slices, documents


def pages_for_message(
    raw: bytes, *, name: str, answer_tokens: int, other_images: int = 0
) -> tuple[documents.Document, list[str]]:
    """Render the pages of the PDF `raw` that fit one message beside its
    `other_images` (what the context holds with room for `answer_tokens`, and
    --max-image-count); return them and the notices to show.

    Raise documents.DocumentRejected when the file cannot be read or no page fits.
    """
    limits = settings.MEDSERVER
    fit = dicom_slices.images_that_fit(answer_tokens)
    room = min(fit, limits.max_image_count) - other_images
    if room <= 0:
        raise documents.DocumentRejected(
            f"No page of {name} fits in this message: it already carries the most images "
            f"that fit ({min(fit, limits.max_image_count)})."
        )
    document = documents.render_pdf(raw, name=name, limit=room)
    if fit < limits.max_image_count:
        why = f"what fits in the model's {limits.max_model_len:,}-token context with the answer"
    else:
        why = f"the most one message may carry, with its other images ({limits.max_image_count})"
    notice = documents.pages_notice(name, document, why)
    return document, [notice] if notice else []
