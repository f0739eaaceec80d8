"""Start a `medserver` process with a chosen environment, for the deployment tests.

conftest's `start_server` drops every MEDSERVER_* variable, as a clean start
should; the deployment tests need to set some (MEDSERVER_ALLOWED_HOSTS) and
Hugging Face's (HF_HOME, HF_ENDPOINT), so they start the server through here.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.e2e.conftest import MEDSERVER, READY_WITHIN_SECONDS, RunningServer, free_port


def start_medserver(
    data_dir: Path,
    *args: str,
    model: str = "demo",
    env: dict[str, str] | None = None,
    wait_for: tuple[str, ...] = ("ready",),
) -> RunningServer:
    """Run `medserver -m MODEL` on a free loopback port until /api/health says `wait_for`."""
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
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environ,
    )
    server = RunningServer(f"http://127.0.0.1:{port}", data_dir, process)
    threading.Thread(target=lambda: server.output.extend(process.stdout), daemon=True).start()
    started = time.monotonic()
    while time.monotonic() - started < READY_WITHIN_SECONDS + 30:
        if process.poll() is not None:
            raise AssertionError("medserver exited:\n" + "".join(server.output))
        if health_status(server) in wait_for:
            server.ready_seconds = time.monotonic() - started
            return server
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"medserver never reached {wait_for}:\n" + "".join(server.output))


def health_status(server: RunningServer) -> str | None:
    """The status /api/health reports (its 503 answers included); None while not listening."""
    try:
        with urllib.request.urlopen(f"{server.url}/api/health", timeout=5) as response:
            return json.load(response)["status"]
    except urllib.error.HTTPError as error:
        return json.load(error).get("status")
    except OSError:
        return None
