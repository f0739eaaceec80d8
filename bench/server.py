"""A real `medserver` process on a free loopback port, and the admin chores around it.

The benchmarks drive the server as clients do, from outside: it runs as a
subprocess with a data dir of its own; users, API tokens and chat sessions are
made with manage.py against that data dir, as an administrator would.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

PROJECT_DIR = Path(__file__).resolve().parent.parent
MEDSERVER = Path(sys.executable).parent / "medserver"
PASSWORD = "a-long-benchmark-passphrase"
READY_WITHIN_SECONDS = 300  # a 4B model on a GPU machine loads in well under that


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    """A running `medserver`; `stop()` ends it and removes its data dir."""

    url: str
    data_dir: Path
    process: subprocess.Popen
    output: list[str] = field(default_factory=list)

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1)

    def manage(self, *args: str, **env: str) -> str:
        """Run manage.py against this server's data dir; return its output."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=PROJECT_DIR,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "medserver_site.settings",
                "MEDSERVER_DATA_DIR": str(self.data_dir),
                "MEDSERVER_LOG_LEVEL": "warning",
                **env,
            },
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {args[0]} failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    def shell(self, code: str) -> object:
        """Run `code` in manage.py shell; it must print one JSON value, which is returned."""
        return json.loads(self.manage("shell", "-c", code).strip().splitlines()[-1])

    def create_user(self, username: str) -> None:
        self.manage(
            "createsuperuser",
            "--noinput",
            "--username",
            username,
            "--email",
            f"{username}@bench.example",
            DJANGO_SUPERUSER_PASSWORD=PASSWORD,
        )

    def api_token(self, username: str) -> str:
        return self.manage("create_api_token", username).strip().splitlines()[-1]

    def new_sessions(self, username: str, count: int) -> list[str]:
        """`count` empty chat sessions of the user, thinking off (as the API is asked)."""
        return self.shell(
            "import json\n"
            "from django.contrib.auth import get_user_model\n"
            "from chat.models import ChatSession\n"
            f"owner = get_user_model().objects.get(username={username!r})\n"
            "made = [ChatSession.objects.create(owner=owner, model_name='bench', thinking=False)\n"
            f"        for _ in range({count})]\n"
            "print(json.dumps([str(s.pk) for s in made]))\n"
        )

    def completion_tokens(self, message_ids: list[int]) -> dict[int, int]:
        """The saved answers' completion token counts, by message id."""
        rows = self.shell(
            "import json\n"
            "from chat.models import Message\n"
            f"rows = Message.objects.filter(pk__in={list(message_ids)!r})\n"
            "print(json.dumps({m.pk: m.completion_tokens or 0 for m in rows}))\n"
        )
        return {int(key): value for key, value in rows.items()}

    def rss_bytes(self) -> int:
        return _status_kib(self.process.pid, "VmRSS") * 1024

    def peak_rss_bytes(self) -> int:
        return _status_kib(self.process.pid, "VmHWM") * 1024

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def start_server(
    *,
    model: str = "demo",
    max_new_tokens: int = 64,
    extra_args: tuple[str, ...] = (),
) -> Server:
    """Start `medserver -m MODEL` with limits that never refuse a benchmark's load,
    and wait until /api/health says it is ready; raise RuntimeError if it never is."""
    data_dir = Path(tempfile.mkdtemp(prefix="medserver-bench-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDSERVER_")}
    env["PYTHONUNBUFFERED"] = "1"
    command = [
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
        "--max-user-streams",
        "64",
        "--rate-limit",
        "100000/minute",
        "--loop-guard",
        "0",
        "--log-level",
        "warning",
        *extra_args,
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    server = Server(f"http://127.0.0.1:{port}", data_dir, process)
    threading.Thread(target=lambda: server.output.extend(process.stdout), daemon=True).start()
    deadline = time.monotonic() + READY_WITHIN_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            shutil.rmtree(data_dir, ignore_errors=True)
            raise RuntimeError("medserver exited:\n" + "".join(server.output))
        try:
            if httpx.get(f"{server.url}/api/health", timeout=5).json()["status"] == "ready":
                return server
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError("medserver never became ready:\n" + "".join(server.output))
