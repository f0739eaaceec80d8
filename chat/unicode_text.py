"""Text that people send must be Unicode that can be stored and tokenized.

JSON can spell a lone UTF-16 surrogate (`"\\ud800"`) that no UTF-8 text can
hold: SQLite refuses to store it and tokenizers refuse to read it. Such text
is refused where it enters (the API's and the socket's JSON, the message
services) with a message, never a crash.
"""

from __future__ import annotations

import re

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

INVALID_TEXT = (
    "The text holds characters that are not valid Unicode (a lone UTF-16 surrogate); "
    "remove them and send it again."
)


def has_invalid_text(value: object) -> bool:
    """Return True if any string in `value` (nested lists and dicts, keys too)
    holds a lone surrogate."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _LONE_SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return False
