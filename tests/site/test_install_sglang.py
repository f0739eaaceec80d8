"""install.sh gives SGLang an environment of its own (.venv-sglang) where it can run.

The GPU is faked with an `nvidia-smi` on PATH that reports one, and Python with
a stand-in interpreter that writes down every command it is given: `-m venv DIR`
makes DIR/bin/python (the same stand-in), `-m pip install ...` installs nothing.
What is asserted is what install.sh asks pip for, in which environment: the real
wheels of SGLang (gigabytes of CUDA) cannot be fetched in a test.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
# sglang 0.5.23 and the releases its METADATA pins (Requires-Dist).
SGLANG_PINS = [
    "sglang==0.5.23",
    "torch==2.14.1",
    "transformers==5.19.0",
    "flashinfer_python[cu13]==0.7.2",
]

FAKE_PYTHON = r"""#!/usr/bin/env bash
printf '%s\n' "$0 $*" >>"$CALLS"
here="$(dirname "$0")"
case "$1 $2" in
  "-m venv")
    mkdir -p "$3/bin" && cp "$0" "$3/bin/python" ;;
  "-m pip")
    if [ -n "${FAIL_PIP_FOR:-}" ] && [[ "$*" == *"$FAIL_PIP_FOR"* ]]; then
      echo "ERROR: No matching distribution found for $FAIL_PIP_FOR" >&2
      exit 1
    fi
    if [[ "$*" == *sglang==* ]]; then touch "$here/sglang-installed"; fi
    if [ "$3" = "wheel" ] && [[ "$*" == *--no-deps* ]]; then  # make_wheelhouse.sh's own wheel
      out=""; previous=""
      for arg in "$@"; do [ "$previous" = "-w" ] && out="$arg"; previous="$arg"; done
      touch "$out/medserver-0.1.0-py3-none-any.whl"
    fi ;;
  -c*)
    if [[ "$2" == *"(3, 11)"* ]] && [ -n "${PYTHON_3_10:-}" ]; then exit 1; fi
    if [[ "$2" == *"version('sglang')"* ]]; then
      [ -e "$here/sglang-installed" ] && echo 0.5.23
    fi ;;
esac
exit 0
"""


@pytest.fixture
def machine(tmp_path):
    """A checkout holding the installer, a stand-in Python, and a GPU to report."""
    root = tmp_path / "medserver"
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(PROJECT / "install.sh", root / "install.sh")
    shutil.copy2(PROJECT / "scripts" / "sglang-requirements.txt", root / "scripts")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    python = bin_dir / "python3"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    return root, bin_dir


def install(machine, gpu: str | None, *args: str, **env: str) -> subprocess.CompletedProcess:
    root, bin_dir = machine
    if gpu:
        smi = bin_dir / "nvidia-smi"
        smi.write_text(f"#!/bin/sh\necho '{gpu}'\n")
        smi.chmod(0o755)
    calls = root.parent / "calls.txt"
    result = subprocess.run(
        ["bash", str(root / "install.sh"), "--yes", "--python", str(bin_dir / "python3"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "HOME": str(root.parent),
            "CALLS": str(calls),
            **env,
        },
    )
    result.calls = calls.read_text().splitlines() if calls.exists() else []
    return result


def pip_installs(result, python: Path) -> list[list[str]]:
    """The arguments of every `pip install` run by `python`."""
    prefix = f"{python} -m pip install "
    return [line[len(prefix) :].split() for line in result.calls if line.startswith(prefix)]


def test_an_sm80_gpu_gets_sglang_in_its_own_environment_with_its_pins(machine):
    root, bin_dir = machine
    result = install(machine, "NVIDIA H200, 9.0")

    assert result.returncode == 0, result.stdout + result.stderr
    sglang_python = root / ".venv-sglang" / "bin" / "python"
    assert f"{bin_dir / 'python3'} -m venv {root / '.venv-sglang'}" in result.calls
    installs = pip_installs(result, sglang_python)
    assert installs[-1] == ["-q", "--disable-pip-version-check", *SGLANG_PINS]
    # MedServer's own environment keeps its torch, and never gets sglang.
    medserver = pip_installs(result, root / ".venv" / "bin" / "python")
    assert ["-q", "--disable-pip-version-check", "torch==2.13.0"] in medserver
    assert not any("sglang" in arg for args in medserver for arg in args)
    assert "SGLang engine: SGLang 0.5.23 in .venv-sglang" in result.stdout

    again = install(machine, "NVIDIA H200, 9.0")
    assert "SGLang 0.5.23 is already installed in .venv-sglang" in again.stdout
    assert len(pip_installs(again, sglang_python)) == len(installs)  # nothing new


def test_an_older_gpu_gets_no_sglang(machine):
    root, _ = machine
    result = install(machine, "Tesla T4, 7.5")

    assert result.returncode == 0, result.stdout + result.stderr
    assert not (root / ".venv-sglang").exists()
    assert not any(".venv-sglang" in line for line in result.calls)
    assert "SGLang skipped: it needs Linux and a GPU of compute capability 8.0" in result.stdout


def test_sglang_comes_from_the_wheelhouse_sglang_folder_offline(machine, tmp_path):
    root, _ = machine
    wheelhouse = tmp_path / "wheelhouse"
    (wheelhouse / "sglang").mkdir(parents=True)
    (wheelhouse / "torch-2.13.0-cp311-cp311-linux_x86_64.whl").touch()
    (wheelhouse / "sglang" / "sglang-0.5.23-cp311-cp311-manylinux_2_34_x86_64.whl").touch()

    result = install(machine, "NVIDIA H100 80GB HBM3, 9.0", "--wheelhouse", str(wheelhouse))

    assert result.returncode == 0, result.stdout + result.stderr
    installs = pip_installs(result, root / ".venv-sglang" / "bin" / "python")
    offline = ["--no-index", "--find-links", str(wheelhouse / "sglang")]
    assert installs == [["-q", "--disable-pip-version-check", *offline, *SGLANG_PINS]]


def test_a_wheelhouse_without_sglang_wheels_warns_and_installs_the_rest(machine, tmp_path):
    root, _ = machine
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    (wheelhouse / "torch-2.13.0-cp311-cp311-linux_x86_64.whl").touch()

    result = install(machine, "NVIDIA A100, 8.0", "--wheelhouse", str(wheelhouse))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "make_wheelhouse.sh --sglang" in result.stderr
    assert not (root / ".venv-sglang").exists()


def test_a_failed_sglang_install_warns_keeps_the_log_and_leaves_no_half_environment(machine):
    root, _ = machine
    result = install(machine, "NVIDIA H200, 9.0", FAIL_PIP_FOR="flashinfer_python")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SGLang 0.5.23 could not be installed into .venv-sglang" in result.stderr
    log = root / ".venv" / "install-sglang.log"
    assert "No matching distribution found for flashinfer_python" in log.read_text()
    assert not (root / ".venv-sglang").exists()
    assert "SGLang engine: not installed (see .venv/install-sglang.log)" in result.stdout


def test_sglang_needs_python_311(machine):
    root, _ = machine
    result = install(machine, "NVIDIA H200, 9.0", PYTHON_3_10="1")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "needs Python 3.11 or newer" in result.stderr
    assert not (root / ".venv-sglang").exists()


def test_make_wheelhouse_puts_sglang_and_its_pins_in_a_folder_of_their_own(machine, tmp_path):
    _, bin_dir = machine
    python = bin_dir / "python3"
    wheelhouse = tmp_path / "wheelhouse"
    calls = tmp_path / "calls.txt"
    made = subprocess.run(
        ["bash", str(PROJECT / "scripts" / "make_wheelhouse.sh"), str(wheelhouse), "--sglang"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "PYTHON": str(python), "CALLS": str(calls)},
    )

    assert made.returncode == 0, made.stdout + made.stderr
    lines = calls.read_text().splitlines()
    folder = wheelhouse / "sglang"
    sglang = f"-w {folder} --find-links {folder} {' '.join(SGLANG_PINS)} pip"
    assert f"{python} -m pip wheel -q --disable-pip-version-check {sglang}" in lines
    # MedServer's own wheels stay pinned to its torch, in the top folder.
    assert any(
        line.endswith(f"-w {wheelhouse} --find-links {wheelhouse} torch==2.13.0") for line in lines
    )
    assert sum("torch==2.14.1" in line for line in lines) == 1
