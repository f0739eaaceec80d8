"""The chat socket opens only for pages of this server, checked as CSRF checks a form.

Django's CSRF check accepts a form post whose Origin is this server's own
scheme, host and port; the socket is held to the same rule (Channels' own
validator looks at the host name alone, so another port on the same machine, a
file:// page or plain http:// against the TLS server got in).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from chat import serving

_DEFAULT_PORTS = {"http": 80, "https": 443}


class SameOriginValidator:
    """ASGI middleware: deny a WebSocket whose Origin is not this server's own."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not same_origin(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)


def same_origin(scope: dict) -> bool:
    """Whether the socket's Origin header names the scheme, host and port it came to
    (the host one of ALLOWED_HOSTS)."""
    headers: dict[bytes, str] = {}
    for name, value in scope.get("headers", []):
        headers.setdefault(name.lower(), value.decode("latin-1").strip())
    origin, host = headers.get(b"origin"), headers.get(b"host")
    if not origin or not host:
        return False
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return False
    scheme = _scheme(scope, headers)
    return _address(origin) == _address(f"{scheme}://{host}")


def _scheme(scope: dict, headers: dict[bytes, str]) -> str:
    """The scheme the page was loaded with: the connection's own, or the one a
    reverse proxy reports (Daphne gives sockets no scheme of their own)."""
    if scope.get("scheme") in ("ws", "wss", "http", "https"):
        return "https" if scope["scheme"] in ("wss", "https") else "http"
    forwarded = headers.get(b"x-forwarded-proto", "").lower()
    if forwarded in _DEFAULT_PORTS:
        return forwarded
    return "https" if serving.config().tls else "http"


def _address(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin, the default port filled in; None if malformed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.username is not None:
        return None
    return parts.scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[parts.scheme]
