"""The clinical disclaimer: one text, stamped wherever an answer leaves the model.

The page shows it under the composer (through the `clinical_disclaimer` tag in
chat.templatetags.chat_format), exports put it at the top and bottom of the
file and on every PDF page, a copied answer carries it (`stamp_copied`, and
the page's script for text selected and copied by hand), and a printed chat
shows it at the top and bottom.
"""

from __future__ import annotations

from django.utils import timezone

CLINICAL_DISCLAIMER = (
    "For research and clinical decision support only. Not a substitute for clinical judgement."
)


def stamp_copied(text: str, *, model_name: str, written_at, notices: list[str] = ()) -> str:
    """An answer as the Copy button puts it on the clipboard: what a reader must
    know first (`notices`: rejected, cut off), the text, who wrote it, when,
    the disclaimer."""
    when = f"{timezone.localtime(written_at):%Y-%m-%d %H:%M %Z}"
    author = model_name or "the model"
    head = "".join(f"{notice}\n\n" for notice in notices)
    return (
        f"{head}{text.rstrip()}\n\n— Written by {author} on {when} (MedServer). "
        f"{CLINICAL_DISCLAIMER}"
    )
