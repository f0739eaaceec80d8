from django import template
from django.utils.safestring import mark_safe

from chat.markdown import render_markdown

register = template.Library()


@register.filter
def markdown(text: str) -> str:
    """Render an answer's Markdown as sanitized HTML."""
    return mark_safe(render_markdown(text or ""))  # noqa: S308 - nh3 sanitized it
