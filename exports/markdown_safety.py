"""Text written into a Markdown export, made inert for any viewer.

Titles, questions, answers, thinking, presets, system prompts and reviews are
written into the file as Markdown; a viewer would run the raw HTML in them
(`<img src=x onerror=...>`, `<script>`) and follow a `javascript:` link. Here
the opening `<` of anything that could be a tag, a comment or an autolink
becomes `&lt;` (shown as "<" by a viewer, and harmless as plain text), and a
link to a scripting or data URI loses its scheme. Code (fenced or indented
blocks, `inline code`) is left as written: a viewer shows it as text anyway,
and an entity there would be shown as it is.
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

_blocks = MarkdownIt("commonmark")
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
_CODE_SPAN = re.compile(r"(`+)(?:.*?[^`])?\1(?!`)", re.S)
_SCRIPT_LINK = re.compile(r"(\]\(\s*<?\s*|\]:\s*<?\s*)(javascript|vbscript|data)\s*:", re.I)


def inert(text: str) -> str:
    """`text` with raw HTML shown as text and scripting links disarmed, code kept."""
    lines = text.split("\n")
    in_code = set()
    for token in _blocks.parse(text):
        if token.type in ("fence", "code_block") and token.map:
            in_code.update(range(*token.map))
    for number, line in enumerate(lines):
        if number not in in_code:
            lines[number] = _inert_line(line)
    return "\n".join(lines)


def _inert_line(line: str) -> str:
    pieces, last = [], 0
    for span in _CODE_SPAN.finditer(line):
        pieces += [_escaped(line[last : span.start()]), span.group(0)]
        last = span.end()
    pieces.append(_escaped(line[last:]))
    return "".join(pieces)


def _escaped(text: str) -> str:
    text = _TAG_START.sub("&lt;", text)
    return _SCRIPT_LINK.sub(lambda m: f"{m.group(1)}unsafe-{m.group(2).lower()}-", text)
