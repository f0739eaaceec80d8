"""Small display helpers for the chat page."""

from django import template

from chat import answer_tables, documents, localization, provenance, selectors
from chat.disclaimer import CLINICAL_DISCLAIMER, stamp_copied

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


@register.filter
def copied_answer(message) -> str:
    """What the Copy button puts on the clipboard: the answer, stamped (chat.disclaimer)."""
    written_at = message.completed_at or message.created_at
    return stamp_copied(message.content, model_name=message.model_name, written_at=written_at)


register.filter("located_findings", selectors.located_findings)


@register.filter
def box_colour(index: int) -> str:
    """The CSS colour of the `index`th localization box, as drawn on the image."""
    red, green, blue = localization.colour(index)
    return f"rgb({red}, {green}, {blue})"


@register.simple_tag
def locate_findings_prompt() -> str:
    """The "Locate findings" quick prompt, in the words of Google's notebook."""
    return localization.LOCATE_FINDINGS_PROMPT


@register.simple_tag
def extract_lab_values_prompt() -> str:
    """The "Extract lab values" quick prompt (chat.documents)."""
    return documents.EXTRACT_LAB_VALUES_PROMPT


@register.filter
def has_table(text: str) -> bool:
    """Whether an answer holds a table, offered as CSV under it."""
    return "|" in text and bool(answer_tables.answer_tables(text))
