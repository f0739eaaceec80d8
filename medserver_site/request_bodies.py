"""Request bodies, checked as they arrive: each route's own size limit, and a pace.

Daphne (through Twisted) reads a request's whole body before the application
sees any of it, so Django's own limits come too late: a 300 MB body would be
read in full, signed in or not, before a 413. Here the body is counted as it
comes in, on the server's loop, before Django and before any sign-in check:

- each route has the limit it needs (`body_limit`): a sign-in form a few
  kilobytes, the API's JSON calls 64 KB, forms with a message's text room for
  it, and only the routes that take images (the upload view, /api/chat,
  /api/analyze, /v1/chat/completions, /v1/responses) the whole upload limit;
- a declared Content-Length over the limit is refused (413) before a byte of
  the body is read, a chunked body as soon as it passes the limit;
- a body that trickles in (slower than MIN_BYTES_PER_SECOND on average once
  GRACE_SECONDS have passed) is refused with a 408 and its connection closed.

Twisted's own parse of multipart bodies is turned off: Django parses them
(and a broken one gets the API's JSON 400, not a bare one from the server).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from urllib.parse import unquote

from daphne import server as daphne_server
from daphne.http_protocol import HTTPFactory, WebRequest
from twisted.internet import reactor
from twisted.protocols.tls import TLSMemoryBIOProtocol

KB = 1024
SIGN_IN_BYTES = 16 * KB
API_CALL_BYTES = 64 * KB
GRACE_SECONDS = 10
MIN_BYTES_PER_SECOND = 32 * KB
_FLUSH_SECONDS = 5  # after a refusal, how long the client may take to read it

_SIGN_IN = re.compile(r"^/(accounts/login|admin/login|setup/[^/]+)/?$")
_UPLOADS = re.compile(
    r"^/(chat/[0-9a-fA-F-]{36}/attachments"
    r"|api/chat|api/analyze|v1/chat/completions|v1/responses)/?$"
)
_API = re.compile(r"^/(api|v1)/")


@dataclass(frozen=True)
class BodyLimits:
    """The byte limits of request bodies, from the server's configuration."""

    uploads: int  # ServerConfig.max_request_bytes
    forms: int  # a form with a message's text, percent-encoded, and room to spare

    @classmethod
    def for_config(cls, config) -> BodyLimits:
        # A character may take 4 bytes of UTF-8, each written %XX in a form.
        return cls(config.max_request_bytes, 12 * config.max_text_length + 256 * KB)

    def body_limit(self, path: str) -> int:
        """The largest body accepted for a request to `path` (its query left out)."""
        if _SIGN_IN.match(path):
            return SIGN_IN_BYTES
        if _UPLOADS.match(path):
            return self.uploads
        if _API.match(path):
            return API_CALL_BYTES
        return self.forms


class LimitedRequest(WebRequest):
    """Daphne's request, with the body counted and paced as it arrives."""

    _refused = False
    _pace = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._parsePOSTFormSubmission = False  # Django parses forms (see the module)

    def gotLength(self, length):
        raw_path = getattr(self.channel, "_path", b"/").split(b"?", 1)[0]
        path = unquote(raw_path.decode("latin-1"))
        self._limit = self.channel.factory.server.body_limits.body_limit(path)
        self._api = bool(_API.match(path))
        self._received = 0
        self._started = time.monotonic()
        super().gotLength(length)
        if length is not None and length > self._limit:
            self._refuse(413, "Payload Too Large", self._too_large())
        elif length != 0:
            self._pace = reactor.callLater(1, self._check_pace)

    def handleContentChunk(self, data):
        if self._refused:
            return
        self._received += len(data)
        if self._received > self._limit:
            self._refuse(413, "Payload Too Large", self._too_large())
            return
        super().handleContentChunk(data)

    def requestReceived(self, command, path, version):
        self._stop_pace()
        if self._refused:
            return
        super().requestReceived(command, path, version)

    def connectionLost(self, reason):
        self._stop_pace()
        super().connectionLost(reason)

    def _check_pace(self):
        self._pace = None
        if self._refused:
            return
        elapsed = time.monotonic() - self._started
        if elapsed > GRACE_SECONDS and self._received < MIN_BYTES_PER_SECOND * elapsed:
            self._refuse(408, "Request Timeout", "The request body arrived too slowly.")
            return
        self._pace = reactor.callLater(1, self._check_pace)

    def _stop_pace(self):
        if self._pace is not None and self._pace.active():
            self._pace.cancel()
        self._pace = None

    def _too_large(self) -> str:
        if self._limit >= 1024 * KB:
            return f"The request body is larger than {self._limit // (1024 * KB)} MB."
        return f"The request body is larger than {self._limit // KB} KB."

    def _refuse(self, status: int, reason: str, message: str) -> None:
        """Answer at once and close: JSON in the API's error shape, text elsewhere."""
        self._refused = True
        self._stop_pace()
        if self._api:
            error = {"message": message, "type": "invalid_request_error"}
            body = json.dumps({"error": {**error, "param": None, "code": None}}).encode()
            content_type = b"application/json"
        else:
            body, content_type = message.encode(), b"text/plain; charset=utf-8"
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
        ).encode()
        transport = self.channel.transport
        transport.write(head + b"Content-Type: " + content_type + b"\r\n\r\n" + body)
        # Read no more of the body (TCP holds the client back), and close our side
        # once the answer is out; the connection goes for good a while later,
        # time enough for the client to read the answer rather than a reset.
        transport.pauseProducing()
        if isinstance(transport, TLSMemoryBIOProtocol):
            transport.loseConnection()  # TLS: sends the answer, then closes as TLS must
        else:
            transport.loseWriteConnection()
        reactor.callLater(_FLUSH_SECONDS, transport.abortConnection)


class LimitedHTTPFactory(HTTPFactory):
    def buildProtocol(self, addr):
        protocol = super().buildProtocol(addr)
        if protocol is not None:
            protocol.requestFactory = LimitedRequest
        return protocol


def install(server, config) -> None:
    """Make the Daphne `server` (not yet running) check bodies as this module says."""
    server.body_limits = BodyLimits.for_config(config)
    # Daphne builds its HTTP factory by this name when it starts (Server.run).
    daphne_server.HTTPFactory = LimitedHTTPFactory
