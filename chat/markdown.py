"""The one Markdown renderer: model answers to safe HTML."""

from __future__ import annotations

import re

import nh3
from markdown_it import MarkdownIt

# CommonMark plus tables and strikethrough; raw HTML in the answer is shown as
# text, never rendered, and nh3 removes anything unsafe that remains.
_md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"])
_TAGS = {
    "p", "br", "hr", "s", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "code",
    "pre", "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
# Table cells are aligned by class, not by a style attribute, so the page
# needs no inline styles (its Content-Security-Policy allows none).
_ALIGN_CLASSES = {"align-left", "align-center", "align-right"}
_CLASSES = {"th": _ALIGN_CLASSES, "td": _ALIGN_CLASSES}


def render_markdown(text: str) -> str:
    """Return sanitized HTML for Markdown `text`; links open safely in a new tab."""
    tokens = _md.parse(text)
    for token in tokens:
        style = token.attrs.pop("style", None) if token.type in ("th_open", "td_open") else None
        if isinstance(style, str) and style.startswith("text-align:"):
            token.attrSet("class", "align-" + style.removeprefix("text-align:"))
    return nh3.clean(
        _md.renderer.render(tokens, _md.options, {}),
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        allowed_classes=_CLASSES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
        set_tag_attribute_values={"a": {"target": "_blank"}},
    )


_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")


class MarkdownStream:
    """Markdown arriving piece by piece, rendered in cheap increments.

    The text is cut into closed blocks, which can no longer change and are
    rendered once, and the open block at the end, re-rendered as it grows. A
    block closes at a blank line followed by unindented text, outside fenced
    code (an indented line may still belong to the block above: a list item's
    continuation). The cut depends only on the text, so a page that renders
    the same text at once (`split`) gets the same closed part.
    """

    def __init__(self) -> None:
        self.text = ""
        self.closed = 0  # text[:closed] is the closed blocks
        self._scanned = 0  # complete lines up to here are scanned
        self._fence: str | None = None  # the marker of an open code fence
        self._after_blank: int | None = None  # where the text after a blank line starts

    def feed(self, piece: str) -> str:
        """Add text; return the text of blocks it closed ("" when none)."""
        self.text += piece
        before = self.closed
        while True:
            end = self.text.find("\n", self._scanned)
            line_end = len(self.text) if end < 0 else end
            line = self.text[self._scanned : line_end]
            if self._after_blank is not None and line[:1] not in ("", " ", "\t"):
                self.closed = self._after_blank  # a new block starts at column 0
                self._after_blank = None
            if end < 0:
                break
            self._scan_line(line, end + 1)
            self._scanned = end + 1
        return self.text[before : self.closed]

    @property
    def tail(self) -> str:
        """The open block: the text after the closed ones."""
        return self.text[self.closed :]

    def _scan_line(self, line: str, next_start: int) -> None:
        fence = _FENCE.match(line)
        if self._fence is not None:
            if fence and fence.group(1)[0] == self._fence[0] and line.strip() == fence.group(1):
                if len(fence.group(1)) >= len(self._fence):
                    self._fence = None
            return
        if fence:
            self._fence = fence.group(1)
            self._after_blank = None
        elif not line.strip():
            self._after_blank = next_start
        elif self._after_blank is not None:
            self._after_blank = None  # an indented line: the block goes on

    @classmethod
    def split(cls, text: str) -> tuple[str, str]:
        """Return (closed blocks, open block) of `text`, as streaming would cut it."""
        stream = cls()
        stream.feed(text)
        return stream.text[: stream.closed], stream.tail
