"""deploy/: the systemd unit and the Windows task start a command line `medserver` accepts."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from medserver_site.cli import parse_args

PROJECT = Path(__file__).resolve().parents[2]
UNIT = PROJECT / "deploy" / "systemd" / "medserver.service"
WINDOWS_TASK = PROJECT / "deploy" / "windows" / "install-service.ps1"


@pytest.fixture(autouse=True)
def _environment_restored():
    """parse_args loads .env files into the environment; undo that after each test."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def _settings(unit_text: str) -> dict[str, list[str]]:
    """Each key of the unit file with its values, in order (keys may repeat)."""
    found: dict[str, list[str]] = {}
    for line in unit_text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_unit_passes_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    # The documented paths, pointed at this checkout (whose .venv has medserver) and a
    # temporary data dir: everything else is checked as it ships.
    venv = Path(sys.executable).parent.parent
    text = UNIT.read_text()
    assert text.count("/opt/medserver/.venv") == 1
    text = text.replace("/opt/medserver/.venv", str(venv)).replace("/opt/medserver", str(PROJECT))
    text = text.replace("/var/lib/medserver", str(tmp_path / "var-lib-medserver"))
    rendered = tmp_path / "medserver.service"
    rendered.write_text(text)

    result = subprocess.run(
        [analyze, "verify", str(rendered)], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_unit_starts_medserver_behind_the_proxy_with_a_flag_line_it_accepts():
    exec_start = _settings(UNIT.read_text())["ExecStart"]
    assert len(exec_start) == 1
    program, *argv = shlex.split(exec_start[0])

    args = parse_args(argv)

    assert program == "/opt/medserver/.venv/bin/medserver"
    assert args.command is None  # serving, not downloading
    assert (args.model, args.host, args.port, args.behind_proxy) == ("4", "127.0.0.1", 8000, True)


def test_unit_restarts_on_failure_starts_at_boot_and_writes_only_its_data():
    settings = _settings(UNIT.read_text())

    assert settings["Restart"] == ["on-failure"]
    assert settings["WantedBy"] == ["multi-user.target"]
    assert settings["User"] == ["medserver"]
    assert settings["EnvironmentFile"] == ["-/opt/medserver/.env"]
    assert settings["NoNewPrivileges"] == ["yes"]
    assert settings["ProtectSystem"] == ["strict"]
    data_dir = next(
        v.split("=", 1)[1] for v in settings["Environment"] if v.startswith("MEDSERVER_DATA_DIR=")
    )
    writable = settings["ReadWritePaths"][0].split()
    assert any(data_dir == path or data_dir.startswith(path + "/") for path in writable)


def test_windows_task_starts_medserver_with_a_flag_line_it_accepts():
    script = WINDOWS_TASK.read_text()
    defaults = dict(re.findall(r'\[(?:string|int)\]\$(\w+) = "?([^"\n,]*)"?', script))
    line = re.search(r'\$Arguments = "(.*?)"\.Trim\(\)', script).group(1)
    argv = (
        line.replace('`"$DataDir`"', "C:/ProgramData/MedServer")
        .replace("$ExtraArguments", "")
        .replace("$Model", defaults["Model"])
        .replace("$ListenAddress", defaults["ListenAddress"])
        .replace("$Port", defaults["Port"])
        .split()
    )

    args = parse_args(argv)

    assert (args.model, args.host, args.port) == ("4", "0.0.0.0", 8000)
    assert "New-ScheduledTaskTrigger -AtStartup" in script
    assert "-RestartCount" in script and "$process.ExitCode -eq 0" in script
