"""Small display helpers for the chat page."""

from django import template
from django.utils import timezone

from chat import answer_notices, provenance, selectors, serving
from chat.disclaimer import CLINICAL_DISCLAIMER, stamp_copied
from exports import tables
from imaging import documents, localization

register = template.Library()

register.filter("engine_label", provenance.engine_label)
register.filter("provenance_facts", provenance.provenance_facts)
register.filter("cut_off_notice", answer_notices.cut_off_notice)
register.filter("rejection_lines", answer_notices.rejection_lines)
register.filter("in_study_order", selectors.study_order)


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


@register.filter
def date_group(moment) -> str:
    """Which group of the chat list a chat last used at `moment` belongs to."""
    days = (timezone.localdate() - timezone.localtime(moment).date()).days
    if days <= 0:
        return "Today"
    if days == 1:
        return "Yesterday"
    if days < 7:
        return "Previous 7 days"
    if days < 30:
        return "Previous 30 days"
    return f"{timezone.localtime(moment):%B %Y}"


@register.simple_tag
def session_timeout_words() -> str:
    """How long without activity before the sign-out (--session-timeout), in words:
    "30 minutes", "1 minute", or in seconds for a fraction of a minute ("24 seconds")."""
    minutes = serving.config().session_timeout
    if float(minutes).is_integer():
        count, unit = int(minutes), "minute"
    else:
        count, unit = round(minutes * 60), "second"
    return f"{count} {unit}{'' if count == 1 else 's'}"


@register.simple_tag
def served_model() -> str:
    """The name of the model this server answers with ("MedServer demo (tiny, random weights)")."""
    from chat.serving import engine_worker

    return engine_worker().state.model or "MedServer"


@register.simple_tag
def clinical_disclaimer() -> str:
    """The clinical disclaimer (chat.disclaimer), as the page shows it."""
    return CLINICAL_DISCLAIMER


@register.filter
def copied_answer(message) -> str:
    """What the Copy button puts on the clipboard: the answer, stamped (chat.disclaimer)."""
    written_at = message.completed_at or message.created_at
    notices = [*answer_notices.rejection_lines(message)]
    if cut_off := answer_notices.cut_off_notice(message):
        notices.append(cut_off)
    return stamp_copied(
        message.content, model_name=message.model_name, written_at=written_at, notices=notices
    )


register.filter("located_findings", selectors.located_findings)


@register.filter
def box_colour(index: int) -> str:
    """The CSS class of the `index`th localization box's colour, as drawn on the
    image (static/css/medserver.css: no style attribute, which the CSP forbids)."""
    return f"box-colour-{index % len(localization.PALETTE)}"


@register.simple_tag
def locate_findings_prompt() -> str:
    """The "Locate findings" quick prompt, in the words of Google's notebook."""
    return localization.LOCATE_FINDINGS_PROMPT


@register.simple_tag
def extract_lab_values_prompt() -> str:
    """The "Extract lab values" quick prompt (imaging.documents)."""
    return documents.EXTRACT_LAB_VALUES_PROMPT


@register.filter
def has_table(text: str) -> bool:
    """Whether an answer holds a table, offered as CSV under it."""
    return "|" in text and bool(tables.answer_tables(text))
