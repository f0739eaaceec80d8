"""PDF documents (lab reports, discharge letters) as page images for the model.

A PDF is rendered page by page with PDFium (pypdfium2) into PNGs of the pixels
alone, each labelled "Document page 2 of 3" for the model and the page. Nothing
else of the file is kept: not its metadata (title, author and subject often name
the patient), not its file name, not its text layer, attachments or scripts, so
it is de-identified as a DICOM image is, and what the model reads is what the
clinician sees. Pages are rendered at most PAGE_LONGEST_PX on their longest side
(small print stays legible after the model's own resizing) whatever size they
declare, and only the pages that fit the message are rendered.

Plain Python: no Django, so the page's uploads and the APIs share it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from imaging.budget import ImageBudget
from imaging.errors import ImageRejected

PAGE_LONGEST_PX = 1600  # an A4 page at about 136 dpi
MAX_PAGES = 200  # a longer file is no lab report; refused before anything is rendered
_LABEL = "Document page {number} of {count}"

# The document-extraction quick prompt: values copied as printed, in a table the
# page renders and exports as CSV, identifiers left out of the answer.
EXTRACT_LAB_VALUES_PROMPT = (
    "Extract every test result from this lab report into a Markdown table with the "
    "columns Test, Value, Unit, Reference range and Flag (H for high, L for low, blank "
    "otherwise), one row per result, in the order of the report. Copy values and units "
    "exactly as printed and write — for anything not printed. Leave out the patient's "
    "name and identifiers. After the table, list the results outside their reference range."
)


class DocumentRejected(ImageRejected):
    """A PDF that cannot be attached as it is."""


@dataclass(frozen=True)
class RenderedPage:
    png: bytes
    width: int
    height: int
    label: str


@dataclass(frozen=True)
class Document:
    """The pages rendered of one PDF, and how many it has."""

    pages: list[RenderedPage]
    page_count: int


def is_pdf(raw: bytes) -> bool:
    """Whether `raw` is a PDF file ("%PDF-" within its first KB, as readers allow)."""
    return b"%PDF-" in raw[:1024]


def render_pdf(raw: bytes, *, name: str, limit: int) -> Document:
    """Render the first `limit` pages of the PDF `raw` as labelled PNGs.

    `name` is how the file is called in refusals. Raise DocumentRejected when it
    cannot be read (damaged, password-protected), has no pages or more than
    MAX_PAGES.
    """
    import pypdfium2  # loaded when a PDF comes, not with every page of the site

    try:
        pdf = pypdfium2.PdfDocument(raw)
    except pypdfium2.PdfiumError:
        raise DocumentRejected(
            f"{name} could not be read as a PDF (it is damaged or password-protected)."
        ) from None
    try:
        count = len(pdf)
        if count == 0:
            raise DocumentRejected(f"{name} has no pages.")
        if count > MAX_PAGES:
            raise DocumentRejected(f"{name} has {count} pages; at most {MAX_PAGES} are read.")
        pages = [_render(pdf[index], index + 1, count, name) for index in range(min(limit, count))]
    finally:
        pdf.close()
    return Document(pages, count)


def _render(page, number: int, count: int, name: str) -> RenderedPage:
    import pypdfium2

    try:
        width, height = page.get_size()  # in points
        if width <= 0 or height <= 0:
            raise DocumentRejected(f"Page {number} of {name} has no size.")
        scale = PAGE_LONGEST_PX / max(width, height)
        # Forms and annotations drawn as printed; the page's white, not transparency.
        picture = page.render(scale=scale, may_draw_forms=True).to_pil().convert("RGB")
    except pypdfium2.PdfiumError:
        raise DocumentRejected(f"Page {number} of {name} could not be rendered.") from None
    finally:
        page.close()
    out = io.BytesIO()
    picture.save(out, format="PNG")  # pixels only
    label = _LABEL.format(number=number, count=count)
    return RenderedPage(out.getvalue(), picture.width, picture.height, label)


def pages_notice(name: str, document: Document, why: str) -> str:
    """Say that only some pages of `name` were attached: "report.pdf: 6 pages, the
    first 4 attached (why)"; "" when all were."""
    if len(document.pages) == document.page_count:
        return ""
    return f"{name}: {document.page_count} pages, the first {len(document.pages)} attached ({why})."


def pages_for_message(
    raw: bytes, *, name: str, budget: ImageBudget, answer_tokens: int, other_images: int = 0
) -> tuple[Document, list[str]]:
    """Render the pages of the PDF `raw` that fit one message beside its
    `other_images` (what the context holds with room for `answer_tokens`, and the
    `budget`'s per-message cap); return them and the notices to show. A document
    longer than fits is cut to its first pages, and the notice says so.

    Raise DocumentRejected when the file cannot be read or no page fits.
    """
    fit = budget.images_that_fit(answer_tokens)
    most = min(fit, budget.max_images)
    room = most - other_images
    if room <= 0:
        raise DocumentRejected(
            f"No page of {name} fits in this message: it already carries the most images "
            f"that fit ({most})."
        )
    document = render_pdf(raw, name=name, limit=room)
    if fit < budget.max_images:
        why = f"what fits in the model's {budget.context_tokens:,}-token context with the answer"
    else:
        why = f"the most one message may carry, with its other images ({budget.max_images})"
    notice = pages_notice(name, document, why)
    return document, [notice] if notice else []
