"""Small display helpers for the chat page."""

from django import template

from chat import provenance
from chat.disclaimer import CLINICAL_DISCLAIMER

register = template.Library()

register.filter("engine_label", provenance.engine_label)
register.filter("provenance_facts", provenance.provenance_facts)


@register.filter
def whole_seconds(milliseconds: int | None) -> int:
    """Milliseconds as whole seconds, at least 1 (for "Thought for N s")."""
    return max(1, round((milliseconds or 0) / 1000))


@register.filter
def gigabytes(megabytes: int) -> str:
    return f"{megabytes / 1024:.1f}"


@register.filter
def thousands(number: int) -> str:
    """12345 -> "12,345"."""
    return f"{number:,}"


@register.simple_tag
def clinical_disclaimer() -> str:
    """The clinical disclaimer (chat.disclaimer), as the page shows it."""
    return CLINICAL_DISCLAIMER
