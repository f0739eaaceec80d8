"""A chat export laid out as a PDF for the patient's chart (see exports.record).

Text is set in Source Sans Pro, embedded (subset) in the file: it covers
Latin, Greek and Cyrillic and the signs clinicians write (µ ° ± × ≥ ≤ →).
Answers are Markdown: they go through the one renderer (chat.markdown), whose
sanitized HTML fpdf2 lays out with headings, lists, tables and code. A
character the font lacks is drawn as ☐ and a note at the end says so; the
Markdown export keeps every character.
"""

from __future__ import annotations

import io
import logging
import unicodedata
from pathlib import Path

import font_source_sans_pro
from fpdf import FPDF, FontFace, TextStyle
from fpdf.enums import XPos, YPos

from chat import answer_notices, selectors
from chat.disclaimer import CLINICAL_DISCLAIMER
from chat.markdown import render_markdown
from chat.models import Message
from exports.record import (
    ChatRecord,
    answer_facts,
    image_caption,
    located_caption,
    located_image,
    review_lines,
    status_notice,
    thumbnail,
    when,
)

log = logging.getLogger(__name__)

FONT_FILES = Path(font_source_sans_pro.__file__).parent / "files"
FONT = "sourcesans"
# The italic faces lack Greek and much else; the upright ones stand in for them.
FALLBACK_FONT = "sourcesansupright"
MISSING = "☐"

INK = (23, 32, 42)
MUTED = (96, 108, 122)
ACCENT = (14, 116, 144)
DANGER = (176, 32, 32)
WARNING_FILL = (255, 243, 205)
QUESTION_FILL = (238, 243, 248)

# PDF thumbnails: sharp enough to print at their size on the page.
THUMBNAIL_PX = 480
THUMBNAIL_MAX_W = 60  # mm
THUMBNAIL_MAX_H = 45  # mm
# An answer's image with its localization boxes: large enough to read the labels.
LOCATED_PX = 1024
LOCATED_MAX_W = 120  # mm
LOCATED_MAX_H = 110  # mm


def _heading_style(size: float, space_above: float, style: str = "B") -> TextStyle:
    return TextStyle(
        font_family=FONT,
        font_style=style,
        font_size_pt=size,
        color=INK,
        t_margin=space_above,
        b_margin=1,
    )


_TAG_STYLES = {
    "h1": _heading_style(15, 4),
    "h2": _heading_style(13.5, 4),
    "h3": _heading_style(12, 3),
    "h4": _heading_style(11, 3),
    "h5": _heading_style(11, 2),
    "h6": _heading_style(11, 2, style="BI"),
    # No monospaced face ships with MedServer: code keeps its lines and indents, in colour.
    "code": FontFace(family=FONT, color=ACCENT),
    "pre": TextStyle(font_family=FONT, color=ACCENT, t_margin=2, b_margin=2, l_margin=6),
    "blockquote": TextStyle(color=MUTED, t_margin=2, b_margin=2, l_margin=6),
    "a": FontFace(color=ACCENT, emphasis="UNDERLINE"),
}


def session_pdf(record: ChatRecord) -> bytes:
    """The chat as a PDF: header, each turn with thumbnails, disclaimer on every page."""
    pdf = _ChartPdf(record)
    pdf.add_page()
    _heading(pdf, record)
    for number, message in record.turns():
        if message.role == Message.Role.USER:
            _question(pdf, number, message)
        else:
            _answer(pdf, number, message, record.include_thinking)
    pdf.ln(4)
    _disclaimer_box(pdf)
    if pdf.missing_glyphs:
        pdf.ln(2)
        note = f"{MISSING} stands for a character this PDF's font cannot show; "
        pdf.paragraph(note + "the Markdown export keeps it.", size=8, color=MUTED)
    return bytes(pdf.output())


class _ChartPdf(FPDF):
    """A4 pages with the chat's title at the top and the disclaimer at the foot of each."""

    def __init__(self, record: ChatRecord) -> None:
        super().__init__(format="A4")
        self.record = record
        self.missing_glyphs = 0
        for style, face in (("", "Regular"), ("B", "Bold"), ("I", "It"), ("BI", "BoldIt")):
            self.add_font(FONT, style, FONT_FILES / f"SourceSansPro-{face}.ttf")
        self.add_font(FALLBACK_FONT, "", FONT_FILES / "SourceSansPro-Regular.ttf")
        self.add_font(FALLBACK_FONT, "B", FONT_FILES / "SourceSansPro-Bold.ttf")
        self.set_fallback_fonts([FALLBACK_FONT], exact_match=False)
        self._glyphs = set(self.fonts[FONT].cmap)
        self.set_margins(18, 16, 18)
        self.set_auto_page_break(True, margin=20)
        self.set_title(self.drawable(record.title))
        self.set_author(record.session.owner.get_username())
        self.set_subject(CLINICAL_DISCLAIMER)
        self.set_creator("MedServer")
        self.set_creation_date(record.exported_at)
        self.set_lang("en")
        self.set_text_color(*INK)
        self.set_font(FONT, size=11)

    def header(self) -> None:
        if self.page_no() == 1:
            return
        with self.local_context(text_color=MUTED):
            self.set_font(FONT, size=8)
            self.set_y(8)
            line = f"{self.record.title} · exported {when(self.record.exported_at)}"
            self.cell(0, 4, self.drawable(line), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_y(self.t_margin)

    def footer(self) -> None:
        with self.local_context(text_color=MUTED):
            self.set_font(FONT, size=8)
            self.set_y(-14)
            self.cell(0, 4, CLINICAL_DISCLAIMER)
            self.set_x(self.l_margin)
            self.cell(0, 4, f"Page {self.page_no()} of {{nb}}", align="R")

    def paragraph(
        self,
        text: str,
        *,
        size: float,
        style: str = "",
        color: tuple[int, int, int] = INK,
        height: float | None = None,
        width: float = 0,
        **options,
    ) -> None:
        """Write `text` as a left-aligned block, then go on at the left margin below it."""
        with self.local_context(text_color=color):
            self.set_font(FONT, style, size)
            self.multi_cell(
                width,
                height or size * 0.46,
                self.drawable(text),
                align="L",
                new_x=XPos.LMARGIN,
                new_y=YPos.NEXT,
                **options,
            )

    def drawable(self, text: str) -> str:
        """`text` as this font can draw it: tabs as spaces, no control characters,
        and ☐ for any character it lacks (NFKD's plain form first, e.g. ﬁ as fi)."""
        text = text.replace("\r\n", "\n").replace("\r", "\n").expandtabs(4)
        return "".join(self._drawable_char(char) for char in text)

    def _drawable_char(self, char: str) -> str:
        if char == "\n" or ord(char) in self._glyphs:
            return char
        category = unicodedata.category(char)
        if category == "Zs":
            return " "
        if category.startswith("C"):
            return ""  # controls and invisible formatting (zero-width joiners, BOM)
        plain = unicodedata.normalize("NFKD", char)
        if plain != char and all(ord(part) in self._glyphs for part in plain):
            return plain
        self.missing_glyphs += 1
        return MISSING


def _heading(pdf: _ChartPdf, record: ChatRecord) -> None:
    pdf.paragraph(record.title, size=18, style="B", height=8)
    pdf.ln(2)
    _disclaimer_box(pdf)
    pdf.ln(3)
    for label, value in record.header_facts():
        with pdf.local_context(text_color=MUTED):
            pdf.set_font(FONT, size=9.5)
            pdf.cell(30, 5, label)
        pdf.paragraph(value, size=9.5, height=5, width=0)
    if record.instructions:
        pdf.ln(2)
        _label(pdf, "Instructions for this chat (system prompt)")
        pdf.paragraph(record.instructions, size=9.5, color=MUTED)
    pdf.ln(3)
    with pdf.local_context(draw_color=(205, 212, 220)):
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())


def _question(pdf: _ChartPdf, number: int, message: Message) -> None:
    pdf.ln(3)
    _label(pdf, f"Question {number} · {when(message.created_at)}")
    pdf.set_fill_color(*QUESTION_FILL)
    pdf.paragraph(message.content.strip(), size=11, fill=True, padding=(2, 3))
    attachments = selectors.study_order(message.attachments.all())
    if attachments:
        pdf.ln(2)
        _thumbnails(pdf, attachments)


def _thumbnails(pdf: _ChartPdf, attachments) -> None:
    """The images side by side, wrapping onto the next row or page, each captioned."""
    x, row_bottom = pdf.l_margin, pdf.get_y()
    top = pdf.get_y()
    for index, attachment in enumerate(attachments, start=1):
        jpeg = thumbnail(attachment, THUMBNAIL_PX)
        caption = image_caption(index, attachment)
        if jpeg is None:
            caption += " (the file is no longer available)"
            w = h = 0.0
        else:
            scale = min(THUMBNAIL_MAX_W / attachment.width, THUMBNAIL_MAX_H / attachment.height)
            w, h = attachment.width * scale, attachment.height * scale
        box_w = max(w, 40)
        if x + box_w > pdf.w - pdf.r_margin:  # next row
            x, top = pdf.l_margin, row_bottom + 3
        if top + h + 10 > pdf.page_break_trigger:  # next page
            pdf.add_page()
            x, top, row_bottom = pdf.l_margin, pdf.get_y(), pdf.get_y()
        if jpeg is not None:
            pdf.image(io.BytesIO(jpeg), x=x, y=top, w=w, h=h)
        with pdf.local_context(text_color=MUTED):
            pdf.set_font(FONT, size=8)
            pdf.set_xy(x, top + h + 1)
            pdf.multi_cell(box_w, 3.6, pdf.drawable(caption), align="L")
        row_bottom = max(row_bottom, pdf.get_y())
        x += box_w + 4
    pdf.set_xy(pdf.l_margin, row_bottom)


def _answer(pdf: _ChartPdf, number: int, message: Message, include_thinking: bool) -> None:
    pdf.ln(4)
    _label(pdf, f"Answer {number} · {when(message.completed_at or message.created_at)}")
    for line in answer_notices.rejection_lines(message):
        pdf.paragraph(line, size=12, style="B", color=DANGER)
    notice = status_notice(message)
    if notice:
        pdf.paragraph(notice, size=10, style="B", color=DANGER)
    if include_thinking and message.thinking.strip():
        _label(pdf, "Thinking (the model's reasoning before its answer)")
        pdf.set_left_margin(pdf.l_margin + 5)
        _markdown(pdf, message.thinking, size=9.5, color=MUTED)
        pdf.set_left_margin(pdf.l_margin - 5)
        pdf.ln(2)
    _markdown(pdf, message.content.strip() or "*(no text)*", size=11, color=INK)
    found = selectors.located_findings(message)
    if found:
        _located(pdf, found)
    pdf.ln(1.5)
    facts = " · ".join(f"{label}: {value}" for label, value in answer_facts(message))
    pdf.paragraph(f"Provenance — {facts}", size=8, color=MUTED)
    for line in review_lines(message):
        pdf.paragraph(line, size=8)


def _located(pdf: _ChartPdf, found: selectors.LocatedFindings) -> None:
    """The answer's localization boxes drawn on its image, captioned, below the text."""
    jpeg = located_image(found, LOCATED_PX, as_jpeg=True)
    if jpeg is None:
        pdf.paragraph(located_caption(found) + " (the image is no longer available)", size=8)
        return
    width, height = found.image.width, found.image.height
    scale = min(LOCATED_MAX_W / width, LOCATED_MAX_H / height)
    w, h = width * scale, height * scale
    if pdf.get_y() + h + 12 > pdf.page_break_trigger:
        pdf.add_page()
    pdf.ln(2)
    top = pdf.get_y()
    pdf.image(io.BytesIO(jpeg), x=pdf.l_margin, y=top, w=w, h=h)
    pdf.set_xy(pdf.l_margin, top + h + 1)
    pdf.paragraph(located_caption(found), size=8, color=MUTED)


def _markdown(pdf: _ChartPdf, text: str, *, size: float, color) -> None:
    """Lay out Markdown at the current position, in the given size and colour."""
    html = render_markdown(pdf.drawable(text))
    pdf.set_x(pdf.l_margin)
    with pdf.local_context(text_color=color):
        pdf.set_font(FONT, size=size)
        try:
            pdf.write_html(
                html,
                font_family=FONT,
                tag_styles=_TAG_STYLES,
                li_prefix_color=color,
                warn_on_tags_not_matching=False,
            )
        except Exception:  # model output must never stop an export
            # fpdf2 could not lay this Markdown out: the text is kept, plainly.
            log.exception("PDF export: Markdown layout failed; writing plain text")
            pdf.paragraph(text, size=size, color=color)


def _disclaimer_box(pdf: _ChartPdf) -> None:
    pdf.set_fill_color(*WARNING_FILL)
    pdf.paragraph(CLINICAL_DISCLAIMER, size=10, style="B", fill=True, padding=(2.5, 3))


def _label(pdf: _ChartPdf, text: str) -> None:
    pdf.paragraph(text, size=9, style="B", color=ACCENT)
    pdf.ln(0.5)
