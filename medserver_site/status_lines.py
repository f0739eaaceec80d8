"""Reason phrases for every HTTP status on Daphne's status lines.

ASGI gives the server a status code only; Daphne passes it to Twisted, whose
table of phrases stops at the statuses of 2000 or so, so a 429 went out as
"HTTP/1.1 429 Unknown Status" (and 422, 451…). Clients and proxies that log
the phrase showed nonsense.
"""

from __future__ import annotations

from http import HTTPStatus


def complete_reason_phrases() -> None:
    """Add Python's phrase for each status Twisted does not know (it knows 429 as none)."""
    from twisted.web import http

    for status in HTTPStatus:
        http.RESPONSES.setdefault(status.value, status.phrase.encode("ascii"))
