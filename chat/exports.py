"""A chat as a file for the patient's chart: Markdown or PDF.

What is exported is what the page shows: the branch on show of the
conversation (chat.selectors.active_path), each question with its images as
thumbnails, each answer with its status, provenance and clinicians' reviews,
the model's thinking only when asked for, and the clinical disclaimer at the
top and the bottom (and, in the PDF, on every page).

The Markdown file stands alone: its thumbnails are small JPEGs in data URIs,
defined once at the very end of the file as reference links, so the text
above them reads as plain text and can be pasted into a chart as it is, while
a Markdown viewer shows the images where they were sent. The PDF is laid out
by chat.export_pdf.
"""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass
from datetime import datetime

from django.db.models import prefetch_related_objects
from django.utils import timezone
from django.utils.text import slugify
from markdown_it import MarkdownIt
from PIL import Image

from chat import answer_notices, provenance, selectors
from chat.disclaimer import CLINICAL_DISCLAIMER
from chat.export_markdown_safety import inert
from chat.models import Attachment, ChatSession, Message
from imaging import localization

KINDS = ("md", "pdf")
# Finds the answer's headings as the page's renderer (chat.markdown) sees them.
_parser = MarkdownIt("commonmark").enable(["table", "strikethrough"])
_ATX = re.compile(r"^( {0,3})#{1,6}")
# The Markdown file carries its thumbnails inline, so they are kept small.
MARKDOWN_THUMBNAIL_PX = 256
# An image with localization boxes is there to be read: larger than a thumbnail.
MARKDOWN_LOCATED_PX = 512


@dataclass(frozen=True)
class Export:
    """A file to download: its bytes, type and name."""

    content: bytes
    content_type: str
    filename: str


@dataclass(frozen=True)
class ChatRecord:
    """What an export shows of a session, read once for either format."""

    session: ChatSession
    messages: list[Message]  # the branch on show, oldest first
    exported_at: datetime
    include_thinking: bool

    @property
    def title(self) -> str:
        return str(self.session)

    @property
    def instructions(self) -> str:
        """The chat's own system prompt (a preset's instructions are named by version)."""
        return self.session.system_prompt.strip()

    def header_facts(self) -> list[tuple[str, str]]:
        """(label, value) pairs describing the chat as a whole."""
        owner = self.session.owner
        name = owner.get_full_name()
        username = owner.get_username()
        facts = [
            ("Clinician", f"{name} ({username})" if name else username),
            ("Exported", when(self.exported_at)),
            ("Time zone", timezone.get_current_timezone_name()),
            ("Chat started", when(self.session.created_at)),
            ("Model", ", ".join(self.models())),
        ]
        if self.session.preset:
            preset = self.session.preset
            facts.append(("Preset", f"{preset.name} (version {preset.version})"))
        facts.append(("Thinking", "included" if self.include_thinking else "not included"))
        return facts

    def models(self) -> list[str]:
        """The models that wrote the answers, in order of first use (else the chat's)."""
        names = [m.model_name for m in self.messages if m.role == Message.Role.ASSISTANT]
        return list(dict.fromkeys(name for name in names if name)) or [self.session.model_name]

    def turns(self):
        """Yield (number, message) in order; an answer has its question's number."""
        number = 0
        for message in self.messages:
            if message.role == Message.Role.USER:
                number += 1
            yield max(number, 1), message


def chat_record(
    session: ChatSession, *, include_thinking: bool = False, exported_at: datetime | None = None
) -> ChatRecord:
    """Read what an export of `session` shows."""
    messages = selectors.active_path(session)
    prefetch_related_objects(messages, "attachments", "reviews")
    return ChatRecord(
        session=session,
        messages=messages,
        exported_at=exported_at or timezone.now(),
        include_thinking=include_thinking,
    )


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
        # Imported here: export_pdf builds on this module, and fpdf2 and the
        # fonts are loaded only when a PDF is asked for.
        from chat import export_pdf

        content = export_pdf.session_pdf(record)
        content_type = "application/pdf"
    else:
        raise ValueError(f"No export as {kind!r}.")
    return Export(content, content_type, export_filename(record, kind))


def export_filename(record: ChatRecord, extension: str) -> str:
    """A name safe on any system: the chat's title in ASCII, then the export's date."""
    stem = slugify(record.title)[:60].strip("-") or "chat"
    return f"{stem}-{timezone.localtime(record.exported_at):%Y-%m-%d}.{extension}"


# ---------------------------------------------------------------- shared wording


def when(moment: datetime | None) -> str:
    """A date and time as the server's clinic reads it: 2026-03-14 09:26 CET."""
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M %Z}" if moment else "—"


def status_notice(message: Message) -> str:
    """What a reader must know about an answer that did not finish ("" when it did)."""
    if message.status == Message.Status.STOPPED:
        return f"Stopped before the answer was finished. {message.error}".strip()
    if message.status == Message.Status.ERROR:
        return f"This answer failed: {message.error or 'it could not be written.'}"
    if message.status == Message.Status.STREAMING:
        return "Still being written when this was exported: the text may be incomplete."
    return answer_notices.cut_off_notice(message)


def answer_facts(message: Message) -> list[tuple[str, str]]:
    """The answer's provenance (chat.provenance) and how long it took."""
    facts = provenance.provenance_facts(message)
    if message.duration_ms:
        facts.append(("Took", f"{message.duration_ms / 1000:.1f} s"))
    return facts


def review_lines(message: Message) -> list[str]:
    """One line per clinician's review of the answer, latest first."""
    lines = []
    for review in message.reviews.all():
        verdict = review.get_verdict_display() or "Feedback"
        parts = [f"{verdict} by {review.reviewer_name}, {when(review.updated_at)}"]
        if review.rating:
            parts.append(review.get_rating_display())
        if review.comment:
            parts.append(f"“{review.comment}”")
        lines.append(" · ".join(parts))
    return lines


def image_caption(number: int, attachment: Attachment) -> str:
    """ "Image 2: Prior study (14 months before the current one): CT slice 3 of 10"; the
    study is known when the images come through selectors.study_order."""
    label = getattr(attachment, "study_label", attachment.label)
    label = label or f"{attachment.width}×{attachment.height}"
    return f"Image {number}: {label}"


def thumbnail(attachment: Attachment, longest_px: int) -> bytes | None:
    """The image scaled down to `longest_px` as a JPEG, or None when it cannot be read."""
    try:
        with attachment.file.open("rb") as file, Image.open(file) as image:
            image.thumbnail((longest_px, longest_px))
            shown = image if image.mode in ("RGB", "L") else image.convert("RGB")
            out = io.BytesIO()
            shown.save(out, format="JPEG", quality=82)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None  # a file gone from the disk must not stop the export
    return out.getvalue()


def located_image(
    found: selectors.LocatedFindings, longest_px: int | None = None, *, as_jpeg: bool = False
) -> bytes | None:
    """The image of `found` with its localization boxes drawn on it (scaled down to
    `longest_px` first, so the labels stay legible), as a PNG or a JPEG; None when
    the file cannot be read."""
    try:
        with found.image.file.open("rb") as file, Image.open(file) as image:
            if longest_px:
                image.thumbnail((longest_px, longest_px))
            drawn = localization.draw_boxes(image, found.boxes)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None  # a file gone from the disk must not stop the page or the export
    out = io.BytesIO()
    if as_jpeg:
        # Full-resolution colour (no 4:2:0 subsampling): thin coloured lines stay their colour.
        drawn.save(out, format="JPEG", quality=90, subsampling=0)
    else:
        drawn.save(out, format="PNG")
    return out.getvalue()


def located_caption(found: selectors.LocatedFindings) -> str:
    """What the overlaid image shows: "Findings located on the image: 1. nodule; 2. ..."."""
    named = "; ".join(f"{n}. {box.label}" for n, box in enumerate(found.boxes, start=1))
    return f"Findings located on the image ({found.image.label or 'the attached image'}): {named}"


# ---------------------------------------------------------------- Markdown


def session_markdown(record: ChatRecord) -> str:
    """The chat as a Markdown document: readable as plain text, thumbnails at the end."""
    # Everything a person or the model wrote goes through inert(): no raw HTML.
    lines = [f"# {inert(_one_line(record.title))}", "", _quoted(f"**{CLINICAL_DISCLAIMER}**"), ""]
    lines += [f"- {label}: {inert(value)}" for label, value in record.header_facts()]
    if record.instructions:
        lines += ["", "Instructions for this chat (system prompt):", ""]
        lines.append(_quoted(inert(record.instructions)))
    images: list[tuple[str, bytes]] = []
    for number, message in record.turns():
        if message.role == Message.Role.USER:
            lines += ["", "---", "", *_markdown_question(number, message, images)]
        else:
            lines += ["", *_markdown_answer(number, message, record.include_thinking, images)]
    lines += ["", "---", "", _quoted(f"**{CLINICAL_DISCLAIMER}**"), ""]
    if images:
        lines += ["<!-- Thumbnails of the images above, as small JPEGs. -->", ""]
        for ref, jpeg in images:
            lines.append(f"[{ref}]: data:image/jpeg;base64,{base64.b64encode(jpeg).decode()}")
    return "\n".join(lines).rstrip("\n") + "\n"


def _markdown_question(number: int, message: Message, images: list[tuple[str, bytes]]) -> list[str]:
    lines = [f"## Question {number} · {when(message.created_at)}", ""]
    # A question is plain text on the page; hard line breaks keep its lines apart.
    lines.append("  \n".join(inert(message.content.strip()).splitlines()))
    for index, attachment in enumerate(selectors.study_order(message.attachments.all()), 1):
        caption = inert(_escape_brackets(image_caption(index, attachment)))
        jpeg = thumbnail(attachment, MARKDOWN_THUMBNAIL_PX)
        if jpeg is None:
            lines += ["", f"[{caption} — the file is no longer available]"]
            continue
        ref = f"image-{message.pk}-{index}"
        images.append((ref, jpeg))
        lines += ["", f"![{caption}][{ref}]"]
    return lines


def _markdown_answer(
    number: int, message: Message, include_thinking: bool, images: list[tuple[str, bytes]]
) -> list[str]:
    lines = [f"## Answer {number} · {when(message.completed_at or message.created_at)}", ""]
    # A clinician's rejection comes first, in the text a chart would take in.
    lines += [
        item
        for line in answer_notices.rejection_lines(message)
        for item in (f"**{inert(line)}**", "")
    ]
    notice = status_notice(message)
    if notice:
        lines += [f"**{inert(notice)}**", ""]
    if include_thinking and message.thinking.strip():
        lines += ["**Thinking** (the model's reasoning before its answer):", ""]
        lines += [_quoted(inert(message.thinking.strip())), ""]
    lines += [inert(_headings_nested(message.content.strip())) or "*(no text)*", ""]
    found = selectors.located_findings(message)
    jpeg = located_image(found, MARKDOWN_LOCATED_PX, as_jpeg=True) if found else None
    if jpeg is not None:
        ref = f"boxes-{message.pk}"
        images.append((ref, jpeg))
        lines += [f"![{_escape_brackets(located_caption(found))}][{ref}]", ""]
    facts = " · ".join(f"{label}: {value}" for label, value in answer_facts(message))
    lines.append(f"Provenance — {inert(facts)}")
    reviews = review_lines(message)
    if reviews:
        lines += ["", "Reviews:", ""]
        lines += [f"- {inert(line)}" for line in reviews]
    return lines


def _headings_nested(text: str) -> str:
    """`text` with its headings two levels down (# becomes ###), under "## Answer n".

    Only top-level headings move; the rest of the text is left as written.
    """
    lines: list[str | None] = list(text.replace("\r\n", "\n").split("\n"))
    for token in _parser.parse(text):
        if token.type != "heading_open" or token.level != 0 or token.map is None:
            continue
        first, end = token.map
        hashes = "#" * min(int(token.tag[1]) + 2, 6)
        if token.markup.startswith("#"):
            lines[first] = _ATX.sub(rf"\g<1>{hashes}", lines[first], count=1)
        else:  # a setext heading: its text, then a line of = or -
            words = " ".join(line.strip() for line in lines[first : end - 1])
            lines[first:end] = [f"{hashes} {words}"] + [None] * (end - first - 1)
    return "\n".join(line for line in lines if line is not None)


def _quoted(text: str) -> str:
    return "\n".join(f"> {line}".rstrip() for line in text.splitlines())


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _escape_brackets(text: str) -> str:
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")
