"""A real `medserver` process on a free loopback port, driven from outside.

Clients reach it over HTTP(S) as a browser or an API client would; users, API
tokens and other chores go through manage.py against its data dir, as an
administrator's would. The end-to-end tests and the benchmarks (bench/) both
start their servers here, so this module imports the standard library only:
neither pytest nor Django.
"""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
MEDSERVER = Path(sys.executable).parent / "medserver"
READY_WITHIN_SECONDS = 60  # the demo model, on a 2-core machine
PASSWORD = "a-long-passphrase"


class ServerError(RuntimeError):
    """The server exited, never became ready, or an admin command failed; the
    message holds what it printed."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class RunningServer:
    """A started `medserver`; `stop()` ends it (its data dir stays, for the caller)."""

    url: str
    data_dir: Path
    process: subprocess.Popen
    output: list[str] = field(default_factory=list)
    ready_seconds: float = 0.0
    tls: ssl.SSLContext | None = None  # trusts the server's certificate, when it has one

    @property
    def ws_url(self) -> str:
        return self.url.replace("http", "ws", 1)

    def health(self) -> dict:
        """/api/health's answer (raise OSError while nothing listens)."""
        try:
            url = f"{self.url}/api/health"
            with urllib.request.urlopen(url, timeout=5, context=self.tls) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:  # 503 while the model is unusable
            return json.load(error)

    def setup_link(self) -> str:
        """The one-time administrator setup link the server printed."""
        for line in self.output:
            match = re.search(r"(http://\S+/setup/\S+/)", line)
            if match:
                return match.group(1)
        raise ServerError("no setup link printed:\n" + "".join(self.output))

    def manage(self, *args: str, **env: str) -> str:
        """Run manage.py against this server's data dir, as an admin would; return its
        output. Raise ServerError, with what it printed, if it fails."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=PROJECT_DIR,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "medserver_site.settings",
                "MEDSERVER_DATA_DIR": str(self.data_dir),
                **env,
            },
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ServerError(f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    def create_user(self, username: str, password: str = PASSWORD) -> None:
        """Create the administrator `username` (an address at clinic.example)."""
        self.manage(
            "createsuperuser",
            "--noinput",
            "--username",
            username,
            "--email",
            f"{username}@clinic.example",
            DJANGO_SUPERUSER_PASSWORD=password,
        )

    def api_token(self, username: str) -> str:
        """A new API token of the existing user `username`; return its key."""
        return self.manage("create_api_token", username).strip().splitlines()[-1]

    def admin_token(self, username: str) -> str:
        """Create the administrator `username` and an API token of theirs; return its key."""
        self.create_user(username)
        return self.api_token(username)

    def stop(self, timeout: float = 15) -> None:
        """Ask the server to stop; kill it if it has not within `timeout` seconds."""
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(
    data_dir: Path,
    *extra_args: str,
    model: str = "demo",
    max_new_tokens: int = 24,
    wait_for: str = "ready",
    tls: ssl.SSLContext | None = None,
    env: dict[str, str] | None = None,
    own_hf_home: bool = True,
    ready_within: float = READY_WITHIN_SECONDS + 30,
    server_class: type[RunningServer] = RunningServer,
) -> RunningServer:
    """Start `medserver -m MODEL` (temperature 0, answers of `max_new_tokens`) on a free
    loopback port, and wait until /api/health reports `wait_for`.

    The server starts clean: no MEDSERVER_* variable of this process reaches
    it, only those in `env`; with `own_hf_home` (the tests) no HF_* variable
    either, and HF_HOME is a folder of its own in the data dir. With `tls` (a
    context trusting the certificate passed in `extra_args`), the server is
    reached over HTTPS. Raise ServerError if it exits or is not there within
    `ready_within` seconds. The server is a `server_class` (a RunningServer
    with more of a caller's chores).
    """
    port = free_port()
    strip = ("MEDSERVER_", "HF_") if own_hf_home else ("MEDSERVER_",)
    environ = {k: v for k, v in os.environ.items() if not k.startswith(strip)}
    environ["PYTHONUNBUFFERED"] = "1"
    if own_hf_home:
        environ["HF_HOME"] = str(data_dir / "hf-home")
    environ.update(env or {})
    process = subprocess.Popen(
        [
            str(MEDSERVER),
            "-m",
            model,
            "-p",
            str(port),
            "-ip",
            "127.0.0.1",
            "--data-dir",
            str(data_dir),
            "--max-new-tokens",
            str(max_new_tokens),
            "--default-temperature",
            "0",
            *extra_args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environ,
    )
    scheme = "https" if tls else "http"
    server = server_class(f"{scheme}://127.0.0.1:{port}", data_dir, process, tls=tls)
    threading.Thread(target=lambda: server.output.extend(process.stdout), daemon=True).start()
    started = time.monotonic()
    while time.monotonic() - started < ready_within:
        if process.poll() is not None:
            raise ServerError("medserver exited:\n" + "".join(server.output))
        try:
            if server.health()["status"] == wait_for:
                server.ready_seconds = time.monotonic() - started
                return server
        except (OSError, ValueError):  # not listening yet, or not answering JSON yet
            pass
        time.sleep(0.2)
    server.stop(timeout=5)
    raise ServerError("medserver never became ready:\n" + "".join(server.output))
