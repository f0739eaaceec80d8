"""A real `medserver -m demo` process on a free loopback port, for end-to-end tests."""

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

import pytest

MEDSERVER = Path(sys.executable).parent / "medserver"
READY_WITHIN_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class RunningServer:
    url: str
    data_dir: Path
    process: subprocess.Popen
    output: list[str] = field(default_factory=list)
    ready_seconds: float = 0.0
    tls: ssl.SSLContext | None = None  # trusts the server's certificate, when it has one

    def health(self) -> dict:
        try:
            url = f"{self.url}/api/health"
            with urllib.request.urlopen(url, timeout=5, context=self.tls) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:  # 503 while the model is unusable
            return json.load(error)

    def setup_link(self) -> str:
        for line in self.output:
            match = re.search(r"(http://\S+/setup/\S+/)", line)
            if match:
                return match.group(1)
        raise AssertionError("no setup link printed:\n" + "".join(self.output))

    def admin_token(self, username: str) -> str:
        """Create the administrator `username` and an API token of theirs; return its key."""
        self.manage(
            "createsuperuser",
            "--noinput",
            "--username",
            username,
            "--email",
            f"{username}@clinic.example",
            DJANGO_SUPERUSER_PASSWORD="a-long-passphrase",
        )
        return self.manage("create_api_token", username).strip().splitlines()[-1]

    def manage(self, *args: str, **env: str) -> str:
        """Run manage.py against this server's data dir, as an admin would."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=Path(__file__).resolve().parents[2],
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
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout


def start_server(
    data_dir: Path,
    *extra_args: str,
    model: str = "demo",
    wait_for: str = "ready",
    tls: ssl.SSLContext | None = None,
    env: dict[str, str] | None = None,
) -> RunningServer:
    """Start `medserver` and wait until /api/health reports `wait_for`.

    The server starts clean: no MEDSERVER_* or Hugging Face variable of this
    process reaches it (HF_HOME is a folder of its own), only those in `env`.
    With `tls` (a context trusting the certificate passed in `extra_args`),
    the server is reached over HTTPS.
    """
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MEDSERVER_", "HF_"))}
    environ.update({"PYTHONUNBUFFERED": "1", "HF_HOME": str(data_dir / "hf-home"), **(env or {})})
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
            "24",
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
    server = RunningServer(f"{scheme}://127.0.0.1:{port}", data_dir, process, tls=tls)
    threading.Thread(target=lambda: server.output.extend(process.stdout), daemon=True).start()
    started = time.monotonic()
    while time.monotonic() - started < READY_WITHIN_SECONDS + 30:
        if process.poll() is not None:
            raise AssertionError("medserver exited:\n" + "".join(server.output))
        try:
            if server.health()["status"] == wait_for:
                server.ready_seconds = time.monotonic() - started
                return server
        except OSError:
            pass
        time.sleep(0.2)
    process.kill()
    raise AssertionError("medserver never became ready:\n" + "".join(server.output))


def stop_server(server: RunningServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = start_server(tmp_path_factory.mktemp("medserver-data"))
    yield running
    stop_server(running)
