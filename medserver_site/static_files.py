"""Static files: compressed, cached by browsers for good, served without Django's middleware.

`medserver` collects static/ (and the admin's files) into the data dir at each
start (`collect`), with WhiteNoise's CompressedManifestStaticFilesStorage: every
file gets a name with a hash of its content, which `{% static %}` writes into
the pages, and a gzip copy. `StaticFilesApp` serves them from the event loop:
the gzip copy to browsers that accept it, and a far-future Cache-Control on
hashed names, so a browser fetches each version of a file once.
"""

from __future__ import annotations

import asyncio

from django.core.management import call_command
from whitenoise.middleware import WhiteNoiseMiddleware


def collect() -> None:
    """Collect the static files into STATIC_ROOT with their hashed names and gzip copies.

    Files that did not change since the last start are not copied again; a
    page always names the version of a file that the running code ships.
    """
    call_command("collectstatic", interactive=False, verbosity=0)


class StaticFilesApp:
    """An ASGI app that answers STATIC_URL with WhiteNoise and hands the rest to `app`.

    WhiteNoise reads its WHITENOISE_* settings as its Django middleware does
    (STATIC_ROOT, and the finders when WHITENOISE_USE_FINDERS is on), but
    the files are sent here, ahead of the sync middleware stack: the pages'
    scripts never wait for the thread that runs the views.
    """

    def __init__(self, app) -> None:
        self.app = app
        self.whitenoise = WhiteNoiseMiddleware(get_response=None)

    async def __call__(self, scope, receive, send) -> None:
        static_file = None
        if scope["type"] == "http" and scope["path"].startswith(self.whitenoise.static_prefix):
            static_file = self._find(scope["path"])
        if static_file is None:
            await self.app(scope, receive, send)
            return
        response = static_file.get_response(scope["method"], _environ_headers(scope))
        body = b""
        if response.file is not None:
            body = await asyncio.to_thread(_read_and_close, response.file)
        headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in response.headers
        ]
        headers.append((b"x-content-type-options", b"nosniff"))
        await send(
            {"type": "http.response.start", "status": int(response.status), "headers": headers}
        )
        await send({"type": "http.response.body", "body": body})

    def _find(self, path: str):
        if self.whitenoise.autorefresh:
            return self.whitenoise.find_file(path)
        return self.whitenoise.files.get(path)


def _environ_headers(scope) -> dict[str, str]:
    """The request's headers as WhiteNoise reads them (WSGI names: HTTP_ACCEPT_ENCODING)."""
    return {
        "HTTP_" + name.decode("latin-1").upper().replace("-", "_"): value.decode("latin-1")
        for name, value in scope.get("headers", [])
    }


def _read_and_close(file) -> bytes:
    with file:
        return file.read()
