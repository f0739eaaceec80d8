"""A chat as a file for the patient's chart: Markdown (exports.markdown) or PDF (exports.pdf).

Both lay out the same `ChatRecord` (exports.record): what the page shows of the
chat. Answer tables export as CSV (exports.tables).
"""

from __future__ import annotations

from datetime import datetime

from chat.models import ChatSession
from exports.markdown import MARKDOWN_LOCATED_PX, MARKDOWN_THUMBNAIL_PX, session_markdown
from exports.record import Export, chat_record, export_filename

KINDS = ("md", "pdf")

__all__ = [
    "KINDS",
    "MARKDOWN_LOCATED_PX",
    "MARKDOWN_THUMBNAIL_PX",
    "Export",
    "chat_record",
    "export_filename",
    "session_export",
]


def session_export(
    session: ChatSession,
    kind: str,
    *,
    include_thinking: bool = False,
    exported_at: datetime | None = None,
) -> Export:
    """Return `session` as a Markdown ("md") or PDF ("pdf") file.

    Raise ValueError for any other kind.
    """
    record = chat_record(session, include_thinking=include_thinking, exported_at=exported_at)
    if kind == "md":
        content = session_markdown(record).encode()
        content_type = "text/markdown; charset=utf-8"
    elif kind == "pdf":
        # Imported here: fpdf2 and the fonts are loaded only when a PDF is asked for.
        from exports import pdf

        content = pdf.session_pdf(record)
        content_type = "application/pdf"
    else:
        raise ValueError(f"No export as {kind!r}.")
    return Export(content, content_type, export_filename(record, kind))
