"""A stand-in for the Hugging Face hub on 127.0.0.1 (the real one cannot be reached
from the test machines): the routes `snapshot_download` uses, for one repository."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REPO = "google/medgemma-1.5-4b-it"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
WEIGHTS = "model.safetensors"


class FakeHub(ThreadingHTTPServer):
    """The hub routes snapshot_download uses, for one repository, on 127.0.0.1.

    `error` makes every answer that error (status, X-Error-Code), as the hub
    does for gated or unknown repositories. `stall_weights` sends half of the
    weights file and then stalls, as a connection that hangs mid-download.
    `cut[name] = n` closes the connection after n bytes of that file, once.
    """

    daemon_threads = True

    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), _HubHandler)
        self.files = files
        self.error: tuple[int, str] | None = None
        self.stall_weights = False
        self.cut: dict[str, int] = {}
        self.half_sent = threading.Event()
        self.release = threading.Event()
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _HubHandler(BaseHTTPRequestHandler):
    server: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def _answer(self, send_body: bool) -> None:
        hub = self.server
        path = self.path.split("?")[0]
        hub.requests.append((self.command, path, {k.lower(): v for k, v in self.headers.items()}))
        if hub.error:
            status, code = hub.error
            self.send_response(status)
            self.send_header("X-Error-Code", code)
            self.send_header("X-Error-Message", "refused by the test hub")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path.startswith(f"/api/models/{REPO}/revision/"):
            siblings = [{"rfilename": name} for name in hub.files]
            return self._json({"id": REPO, "sha": COMMIT, "siblings": siblings})
        if path.startswith(f"/api/models/{REPO}/tree/"):
            return self._json(
                [
                    {"type": "file", "path": name, "size": len(data), "oid": _oid(data)}
                    for name, data in hub.files.items()
                ]
            )
        prefix = f"/{REPO}/resolve/{COMMIT}/"
        if path.startswith(prefix) and path[len(prefix) :] in hub.files:
            return self._file(path[len(prefix) :], send_body)
        self.send_response(404)
        self.send_header("X-Error-Code", "EntryNotFound")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _json(self, value) -> None:
        body = json.dumps(value).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _file(self, name: str, send_body: bool) -> None:
        data = self.server.files[name]
        start = 0
        if self.headers.get("Range", "").startswith("bytes="):
            start = int(self.headers["Range"][6:].split("-")[0])
        self.send_response(206 if start else 200)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{_oid(data)}"')
        self.send_header("Content-Length", str(len(data) - start))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if not send_body:
            return
        if name == WEIGHTS and self.server.stall_weights:
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.server.half_sent.set()
            self.server.release.wait(30)
            self.close_connection = True
            return
        if name in self.server.cut and not start:
            self.wfile.write(data[: self.server.cut.pop(name)])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(data[start:])


def _oid(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()
