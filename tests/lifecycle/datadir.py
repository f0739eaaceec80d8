"""Real data dirs for the lifecycle tests, made and read as an admin's tools would.

Django code runs against a data dir in a process of its own (the suite's own
Django uses an in-memory database); the `medserver` and `manage.py` commands
run as subprocesses, the way a cron job runs them.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
from contextlib import closing
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
MEDSERVER = Path(sys.executable).parent / "medserver"
PASSWORD = "a-long-passphrase"

_PRELUDE = """
import json, django
django.setup()
from django.apps import apps
from django.core.management import call_command
from django.db.models.signals import post_migrate
from chat.apps import _sync_builtin_presets
if {target!r}:
    # Today's built-in presets need today's tables; an older schema has none.
    post_migrate.disconnect(_sync_builtin_presets, sender=apps.get_app_config("chat"))
call_command("migrate", *{target!r}, interactive=False, verbosity=0)
result = None
"""


def environ(data_dir: Path, **extra: str) -> dict[str, str]:
    """A clean environment for commands on `data_dir` (no MEDSERVER_* of this process)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDSERVER_", "HF_"))}
    env.update(
        MEDSERVER_DATA_DIR=str(data_dir),
        DJANGO_SETTINGS_MODULE="medserver_site.settings",
        MEDSERVER_LOG_LEVEL="warning",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def django_run(data_dir: Path, code: str, *, migrate_to: tuple[str, ...] = ()):
    """Migrate `data_dir` (to `migrate_to`, e.g. ("chat", "0005..."), else fully), run
    `code` there and return the JSON value it leaves in `result`."""
    script = _PRELUDE.format(target=migrate_to) + code + "\nprint(json.dumps(result))\n"
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT,
        env=environ(data_dir),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def medserver(*args: str, data_dir: Path | None = None, **run) -> subprocess.CompletedProcess:
    """Run the `medserver` command; return what it did (never raises on failure)."""
    env = environ(data_dir) if data_dir else environ(Path("/nonexistent"))
    if data_dir is None:
        env.pop("MEDSERVER_DATA_DIR")
    return subprocess.run(
        [str(MEDSERVER), *args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        **run,
    )


def manage(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT,
        env=environ(data_dir),
        capture_output=True,
        text=True,
        timeout=300,
    )


def query(data_dir: Path, sql: str, *params) -> list[tuple]:
    with closing(sqlite3.connect(data_dir / "medserver.sqlite3", timeout=20)) as db:
        return db.execute(sql, params).fetchall()


def files_under(folder: Path) -> dict[str, bytes]:
    """Every file under `folder`, by path relative to it, with its bytes."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def archive_members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}


def archive_write(archive: Path, members: dict[str, bytes]) -> None:
    """Write `members` as a backup archive is written (tar, gzip), in the order given."""
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
