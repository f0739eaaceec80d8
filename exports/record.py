"""What an export shows of a chat, read once for either format, and the wording both use.

What is exported is what the page shows: the branch on show of the
conversation (chat.selectors.active_path), each question with its images as
thumbnails, each answer with its status, provenance and clinicians' reviews,
the model's thinking only when asked for, and the clinical disclaimer at the
top and the bottom (and, in the PDF, on every page). exports.markdown and
exports.pdf lay it out.
"""

from __future__ import annotations

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
from chat.models import Attachment, ChatSession, Message
from imaging import localization

# Finds the answer's headings as the page's renderer (chat.markdown) sees them.
_parser = MarkdownIt("commonmark").enable(["table", "strikethrough"])
_ATX = re.compile(r"^( {0,3})#{1,6}")


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
