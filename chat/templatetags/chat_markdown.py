from dataclasses import dataclass

from django import template
from django.utils.safestring import SafeString, mark_safe

from chat.markdown import MarkdownStream, render_markdown

register = template.Library()


@register.filter
def markdown(text: str) -> str:
    """Render an answer's Markdown as sanitized HTML."""
    return mark_safe(render_markdown(text or ""))  # noqa: S308 - nh3 sanitized it


@dataclass(frozen=True)
class StreamingParts:
    closed: SafeString
    tail: SafeString


@register.filter
def markdown_parts(text: str) -> StreamingParts:
    """Text still being written, cut as the stream cuts it: closed blocks and the open one."""
    closed, tail = MarkdownStream.split(text or "")
    return StreamingParts(
        closed=mark_safe(render_markdown(closed) if closed else ""),  # noqa: S308 - sanitized
        tail=mark_safe(render_markdown(tail) if tail else ""),  # noqa: S308 - sanitized
    )
