"""A chat as a Markdown file for the patient's chart (exports.record reads it).

The Markdown file stands alone: its thumbnails are small JPEGs in data URIs,
defined once at the very end of the file as reference links, so the text
above them reads as plain text and can be pasted into a chart as it is, while
a Markdown viewer shows the images where they were sent. Whatever the model or
the clinician wrote is made inert first (exports.markdown_safety).
"""

from __future__ import annotations

import base64
import re

from markdown_it import MarkdownIt

from chat import answer_notices, selectors
from chat.disclaimer import CLINICAL_DISCLAIMER
from chat.models import Message
from exports.markdown_safety import inert
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

# Finds the answer's headings as the page's renderer (chat.markdown) sees them.
_parser = MarkdownIt("commonmark").enable(["table", "strikethrough"])
_ATX = re.compile(r"^( {0,3})#{1,6}")
# The Markdown file carries its thumbnails inline, so they are kept small.
MARKDOWN_THUMBNAIL_PX = 256
# An image with localization boxes is there to be read: larger than a thumbnail.
MARKDOWN_LOCATED_PX = 512


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
