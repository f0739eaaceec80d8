"""A real `medserver` process on a free loopback port, and the admin chores around it.

The benchmarks drive the server as clients do, from outside: it runs as a
subprocess with a data dir of its own; users, API tokens and chat sessions are
made with manage.py against that data dir, as an administrator would. Starting
and stopping it is the end-to-end tests' own starter (tests/support/server.py,
standard library only: the benchmarks need no pytest); this module adds what
only the benchmarks ask of a server.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from tests.support.server import PASSWORD, PROJECT_DIR, RunningServer, ServerError
from tests.support.server import start_server as start_medserver

__all__ = ["PASSWORD", "PROJECT_DIR", "Server", "start_server"]

READY_WITHIN_SECONDS = 300  # a 4B model on a GPU machine loads in well under that


class Server(RunningServer):
    """A running `medserver`; `stop()` ends it and removes its data dir."""

    def manage(self, *args: str, **env: str) -> str:
        """Run manage.py against this server's data dir, its logging quiet; return its output."""
        return super().manage(*args, **{"MEDSERVER_LOG_LEVEL": "warning", **env})

    def shell(self, code: str) -> object:
        """Run `code` in manage.py shell; it must print one JSON value, which is returned."""
        return json.loads(self.manage("shell", "-c", code).strip().splitlines()[-1])

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

    def stop(self, timeout: float = 20) -> None:
        super().stop(timeout)
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
    """Start `medserver -m MODEL` with limits that never refuse a benchmark's load, in a
    data dir of its own, and wait until /api/health says it is ready; raise
    RuntimeError (ServerError) if it never is. The Hugging Face cache is the
    machine's, for a real model's weights."""
    data_dir = Path(tempfile.mkdtemp(prefix="medserver-bench-"))
    try:
        return start_medserver(
            data_dir,
            "--max-user-streams",
            "64",
            "--rate-limit",
            "100000/minute",
            "--loop-guard",
            "0",
            "--log-level",
            "warning",
            *extra_args,
            model=model,
            max_new_tokens=max_new_tokens,
            own_hf_home=False,
            ready_within=READY_WITHIN_SECONDS,
            server_class=Server,
        )
    except ServerError:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise
