"""The clinical disclaimer: one text, stamped wherever an answer leaves the model.

The page shows it under the composer (through the `clinical_disclaimer` tag in
chat.templatetags.chat_format), exports put it at the top and bottom of the
file and on every PDF page, and the page's script adds the shown text to
copied answers.
"""

CLINICAL_DISCLAIMER = (
    "For research and clinical decision support only. Not a substitute for clinical judgement."
)
