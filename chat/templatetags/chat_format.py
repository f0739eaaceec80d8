"""Small display helpers for the chat page."""

from django import template

register = template.Library()

ENGINE_LABELS = {"transformers": "Transformers", "sglang": "SGLang", "remote": "Remote"}


@register.filter
def engine_label(name: str) -> str:
    """The engine's name as people write it: SGLang, Transformers, Remote."""
    return ENGINE_LABELS.get(name, name.title()) if name else "—"


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
