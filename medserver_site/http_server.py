"""Two corrections to what Daphne (on Twisted) does before a request reaches Django.

Reason phrases: ASGI gives the server a status code only; Daphne passes it to
Twisted, whose table of phrases misses the newer statuses, so a 429 went out as
"HTTP/1.1 429 Unknown Status" (and 422, 451…), and clients and proxies that log
the phrase showed nonsense.

Form bodies: Twisted parses every multipart/form-data POST itself, for its own
`request.args`, which Daphne never reads. An upload was parsed twice (once by
Twisted's email parser, once by Django), and a body Twisted could not parse
was answered with a bare 400 and a closed connection before Django could say
what was wrong.
"""

from __future__ import annotations

from http import HTTPStatus


def prepare() -> None:
    """Apply both corrections; call once, before the server starts."""
    from daphne.http_protocol import WebRequest
    from twisted.web import http

    for status in HTTPStatus:
        http.RESPONSES.setdefault(status.value, status.phrase.encode("ascii"))
    if getattr(WebRequest, "_medserver_prepared", False):
        return
    twisted_init = WebRequest.__init__

    def __init__(self, *args, **kwargs):
        twisted_init(self, *args, **kwargs)
        self._parsePOSTFormSubmission = False  # Django reads the body; Twisted need not

    WebRequest.__init__ = __init__
    WebRequest._medserver_prepared = True
