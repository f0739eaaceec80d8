"""A correction to what Daphne (on Twisted) sends: real reason phrases.

ASGI gives the server a status code only; Daphne passes it to Twisted, whose
table of phrases misses the newer statuses, so a 429 went out as
"HTTP/1.1 429 Unknown Status" (and 422, 451…), and clients and proxies that log
the phrase showed nonsense. (Twisted's own parse of multipart bodies, which
Daphne never reads, is turned off with the body checks in
medserver_site.request_bodies.)
"""

from __future__ import annotations

from http import HTTPStatus


def prepare() -> None:
    """Fill Twisted's table of reason phrases from Python's; call once, before the
    server starts."""
    from twisted.web import http

    for status in HTTPStatus:
        http.RESPONSES.setdefault(status.value, status.phrase.encode("ascii"))
