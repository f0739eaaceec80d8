"""An air-gapped install: scripts/make_wheelhouse.sh, then install.sh --wheelhouse.

The test machines reach no package index during tests, so the "connected
machine" here is played by a folder of wheels made from the packages this very
test environment has installed (the ones install.sh put there): that folder
stands in for PyPI. It holds what MedServer needs to run (its dependencies,
theirs, and so on, as this Python's markers choose them) with pip and
setuptools; the test tools are left out, as a plain install never asks for
them (a third less to pack). make_wheelhouse.sh prepares a wheelhouse from it, as it
would from PyPI; install.sh then builds a fresh .venv in a copy of the checkout
from that wheelhouse alone, with pip's configuration emptied and every proxy
variable pointing at a closed port, so that a single download would fail.
The same install also takes --hf-token and --model 4, whose weights come from
a stand-in of the Hugging Face hub on loopback (tests/site/test_download.py).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.metadata
import io
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from inference.demo_model import ensure_demo_model
from medserver_site import __version__
from tests.support.hub import FakeHub

PROJECT = Path(__file__).resolve().parents[2]
# Written by pip at install time, not part of a wheel.
_INSTALL_RECORDS = {"INSTALLER", "REQUESTED", "RECORD", "direct_url.json"}


def wheel_from_installed(dist: importlib.metadata.Distribution, out: Path) -> Path:
    """Pack an installed distribution back into a wheel in `out`; return its path.

    Console scripts are left out: pip writes them again from entry_points.txt.
    """
    info = Path(dist._path)  # the .dist-info folder
    tags = [
        line.split(":", 1)[1].strip()
        for line in (info / "WHEEL").read_text().splitlines()
        if line.startswith("Tag:")
    ]
    parts = [sorted({tag.split("-")[i] for tag in tags}) for i in range(3)]
    name = dist.metadata["Name"].replace("-", "_").replace(".", "_")
    wheel = out / f"{name}-{dist.version}-{'-'.join('.'.join(p) for p in parts)}.whl"
    site = info.parent
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as archive:
        for entry in dist.files or []:
            relative = Path(entry)
            path = site / relative
            if ".." in relative.parts or "__pycache__" in relative.parts or not path.is_file():
                continue
            if relative.parent == Path(info.name) and relative.name in _INSTALL_RECORDS:
                continue
            data = path.read_bytes()
            archive.writestr(relative.as_posix(), data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            writer.writerow([relative.as_posix(), f"sha256={digest.decode()}", len(data)])
        writer.writerow([f"{info.name}/RECORD", "", ""])
        archive.writestr(f"{info.name}/RECORD", record.getvalue())
    return wheel


def runtime_distributions() -> list[importlib.metadata.Distribution]:
    """The installed distributions a plain install of MedServer takes (MedServer's
    requirements, theirs, and so on, with the extras each asks for; markers
    evaluated for this Python), and pip and setuptools, which install.sh and
    make_wheelhouse.sh take from the index too. MedServer itself is not among them."""
    installed = {
        canonicalize_name(dist.metadata["Name"]): dist
        for dist in importlib.metadata.distributions()
    }
    wanted: dict[str, importlib.metadata.Distribution] = {}
    seen: set[tuple[str, tuple[str, ...]]] = set()
    todo: list[tuple[str, tuple[str, ...]]] = [("medserver", ()), ("pip", ()), ("setuptools", ())]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        wanted[name] = dist = installed[name]  # pip installed each; a KeyError says which is not
        for line in dist.requires or []:
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": e}) for e in ("", *extras)):
                asked = tuple(sorted(requirement.extras))
                todo.append((canonicalize_name(requirement.name), asked))
    del wanted["medserver"]
    return list(wanted.values())


@pytest.fixture(scope="module")
def package_index(tmp_path_factory) -> Path:
    """The stand-in for PyPI: what MedServer needs to run, as installed here."""
    folder = tmp_path_factory.mktemp("package-index")
    for dist in runtime_distributions():
        if (Path(dist._path) / "WHEEL").exists():
            wheel_from_installed(dist, folder)
    return folder


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A copy of this checkout's files (what a person carries over), without .venv."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    copy = tmp_path_factory.mktemp("air-gapped") / "medserver"
    for name in filter(None, listed):
        source = PROJECT / name.decode()
        if source.is_file():
            (copy / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name.decode())
    return copy


def _offline_env(**extra: str) -> dict[str, str]:
    """No pip configuration, no index, and a proxy that refuses every connection."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{probe.getsockname()[1]}"
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("PIP_", "HF_"))}
    env.update(
        {
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_RETRIES": "0",
            "http_proxy": nowhere,
            "https_proxy": nowhere,
            "HTTP_PROXY": nowhere,
            "HTTPS_PROXY": nowhere,
            "ALL_PROXY": nowhere,
            "NO_PROXY": "127.0.0.1",  # the stand-in hub only
            **extra,
        }
    )
    return env


@pytest.fixture
def hub(tmp_path):
    demo = ensure_demo_model(tmp_path / "demo" / "demo")
    server = FakeHub({p.name: p.read_bytes() for p in demo.iterdir() if p.name[0] != "."})
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_make_wheelhouse_then_install_without_the_network(package_index, checkout, hub, tmp_path):
    wheelhouse = tmp_path / "wheelhouse"
    started = time.monotonic()
    made = subprocess.run(
        ["bash", str(PROJECT / "scripts" / "make_wheelhouse.sh"), str(wheelhouse)],
        env=_offline_env(
            PYTHON=sys.executable, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(package_index)
        ),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    assert (wheelhouse / f"medserver-{__version__}-py3-none-any.whl").is_file()
    assert list(wheelhouse.glob("torch-*.whl")) and list(wheelhouse.glob("setuptools-*.whl"))
    made_in = time.monotonic() - started

    hf_home = tmp_path / "hf-home"
    installed = subprocess.run(
        ["bash", "install.sh", "--yes", "--wheelhouse", str(wheelhouse)]
        + ["--hf-token", "hf_install_token", "--model", "4"],
        cwd=checkout,
        # PIP_COMPILE=0: pip writes no .pyc files for the thousands of modules of torch
        # and transformers (minutes of CPU here, and none of install.sh's doing);
        # Python compiles what the checks below import.
        env=_offline_env(HF_ENDPOINT=hub.url, HF_HOME=str(hf_home), PIP_COMPILE="0"),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=900,
    )
    print(
        f"make_wheelhouse.sh: {made_in:.0f} s; install.sh --wheelhouse: "
        f"{time.monotonic() - started - made_in:.0f} s"
    )

    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "Installed from the wheelhouse" in installed.stdout
    assert "Model weights: -m 4 downloaded" in installed.stdout
    assert "source .venv/bin/activate && medserver -m 4" in installed.stdout
    snapshots = hf_home / "hub" / "models--google--medgemma-1.5-4b-it" / "snapshots"
    assert list(snapshots.glob("*/config.json"))
    dot_env = checkout / ".env"
    assert dot_env.stat().st_mode & 0o777 == 0o600
    assert "HF_TOKEN=hf_install_token\n" in dot_env.read_text()
    assert "Bearer hf_install_token" in {h.get("authorization") for _, _, h in hub.requests}
    medserver = checkout / ".venv" / "bin" / "medserver"
    version = subprocess.run([str(medserver), "--version"], capture_output=True, text=True)
    assert version.stdout.strip() == f"medserver {__version__}"
    imports = subprocess.run(
        [str(checkout / ".venv" / "bin" / "python"), "-c", "import torch, transformers, daphne"],
        capture_output=True,
        text=True,
    )
    assert imports.returncode == 0, imports.stderr


def test_install_refuses_a_folder_without_wheels(tmp_path):
    result = subprocess.run(
        ["bash", str(PROJECT / "install.sh"), "--yes", "--wheelhouse", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"install.sh: error: --wheelhouse {tmp_path} holds no wheels (*.whl); "
        "make it with scripts/make_wheelhouse.sh"
    )
