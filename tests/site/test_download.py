"""`medserver download`: fetches a model with huggingface_hub, resumes, and fails in one line.

The Hugging Face hub cannot be reached from the test machines, so these tests
point the real `medserver` command (through HF_ENDPOINT) at a small stand-in on
loopback that answers the few hub routes a download uses, serving the demo
model's files under MedGemma's repository id. Each test has its own HF_HOME,
so the real cache is never touched.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from inference.demo_model import ensure_demo_model
from tests.support.hub import COMMIT, REPO, WEIGHTS, FakeHub

MEDSERVER = Path(sys.executable).parent / "medserver"


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory) -> dict[str, bytes]:
    folder = ensure_demo_model(tmp_path_factory.mktemp("demo") / "demo")
    return {p.name: p.read_bytes() for p in folder.iterdir() if not p.name.startswith(".")}


@pytest.fixture
def hub(demo_files):
    server = FakeHub(demo_files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    """The environment of a person with an empty Hugging Face cache and no token."""
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("HF_", "MEDSERVER_", "HUGGING"))
    }
    return {**base, "HF_HOME": str(tmp_path / "hf-home"), "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def workdir(tmp_path) -> Path:
    folder = tmp_path / "cwd"
    folder.mkdir()
    return folder


def download(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(MEDSERVER), "download", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("medserver: error: ")
    return lines[0]


def _snapshot(env: dict[str, str]) -> Path:
    return (
        Path(env["HF_HOME"]) / "hub" / "models--google--medgemma-1.5-4b-it" / "snapshots" / COMMIT
    )


# --- success


def test_download_puts_every_file_in_the_cache_and_says_where(hub, env, workdir, demo_files):
    result = download("-m", "4", env={**env, "HF_ENDPOINT": hub.url}, cwd=workdir)

    assert result.returncode == 0, result.stderr
    snapshot = _snapshot(env)
    assert {p.name: p.read_bytes() for p in snapshot.iterdir()} == demo_files
    assert f"is in {snapshot}" in result.stdout
    assert "Serve it with: medserver -m 4" in result.stdout
    assert "Fetching" in result.stderr  # huggingface_hub's progress bar


def test_download_to_a_folder_gives_a_folder_medserver_can_serve(hub, env, workdir, tmp_path):
    target = tmp_path / "usb" / "medgemma-1.5-4b-it"

    result = download(
        "-m", "4", "--to", str(target), env={**env, "HF_ENDPOINT": hub.url}, cwd=workdir
    )

    assert result.returncode == 0, result.stderr
    assert (target / "config.json").is_file() and (target / WEIGHTS).is_file()
    assert f"Serve it with: medserver -m {target}" in result.stdout
    assert not _snapshot(env).exists()


def test_token_from_the_flag_or_dot_env_reaches_the_hub(hub, env, workdir):
    hub_env = {**env, "HF_ENDPOINT": hub.url}
    download("-m", "4", "--hf-token", "hf_from_flag", env=hub_env, cwd=workdir)
    (workdir / ".env").write_text("HF_TOKEN=hf_from_dot_env\n")
    download("-m", "4", env={**hub_env, "HF_HOME": str(workdir / "other-cache")}, cwd=workdir)

    tokens = {headers.get("authorization") for _, _, headers in hub.requests}
    assert {"Bearer hf_from_flag", "Bearer hf_from_dot_env"} <= tokens


def test_interrupted_download_keeps_finished_files_and_fetches_only_the_rest(
    hub, env, workdir, demo_files
):
    hub_env = {**env, "HF_ENDPOINT": hub.url}
    hub.stall_weights = True
    first = subprocess.Popen(
        [str(MEDSERVER), "download", "-m", "4"],
        env=hub_env,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert hub.half_sent.wait(60), "the download never started"
    deadline = time.monotonic() + 30
    while len([p for m, p, _ in hub.requests if m == "GET" and "/resolve/" in p]) < len(demo_files):
        assert time.monotonic() < deadline, "the small files were never fetched"
        time.sleep(0.1)
    time.sleep(0.5)  # let the small files land in the cache
    first.send_signal(signal.SIGINT)  # Ctrl-C
    _, stderr = first.communicate(timeout=30)
    assert first.returncode == 130
    assert "run the same command to resume" in stderr
    assert not (_snapshot(env) / WEIGHTS).exists()

    hub.stall_weights = False
    hub.release.set()
    hub.requests.clear()
    second = download("-m", "4", env=hub_env, cwd=workdir)

    assert second.returncode == 0, second.stderr
    fetched = [p for m, p, _ in hub.requests if m == "GET" and "/resolve/" in p]
    assert [p.rsplit("/", 1)[1] for p in fetched] == [WEIGHTS]
    assert {p.name: p.read_bytes() for p in _snapshot(env).iterdir()} == demo_files


def test_dropped_connection_resumes_from_what_arrived(hub, env, workdir):
    # huggingface_hub writes in 10 MiB chunks, so a shard-sized file shows the resume.
    shard = hashlib.sha256(b"shard").digest() * (24 * 1024 * 1024 // 32)
    hub.files["model-00001-of-00002.safetensors"] = shard
    hub.cut["model-00001-of-00002.safetensors"] = 15 * 1024 * 1024

    result = download("-m", "4", env={**env, "HF_ENDPOINT": hub.url}, cwd=workdir)

    assert result.returncode == 0, result.stderr
    ranges = [
        h.get("range")
        for m, p, h in hub.requests
        if m == "GET" and p.endswith("model-00001-of-00002.safetensors")
    ]
    assert ranges == [None, f"bytes={10 * 1024 * 1024}-"]
    assert (_snapshot(env) / "model-00001-of-00002.safetensors").read_bytes() == shard


def test_model_already_in_the_cache_is_found_without_the_network(hub, env, workdir):
    assert download("-m", "4", env={**env, "HF_ENDPOINT": hub.url}, cwd=workdir).returncode == 0

    offline = download("-m", "4", env={**env, "HF_HUB_OFFLINE": "1"}, cwd=workdir)

    assert offline.returncode == 0, offline.stderr
    assert f"is in {_snapshot(env)}" in offline.stdout


# --- failure: exit 1 and one line that says what to do


def test_no_network_and_no_cache_is_one_clear_line(env, workdir):
    result = download(
        "-m", "4", env={**env, "HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}"}, cwd=workdir
    )

    assert result.returncode == 1
    line = _one_error_line(result)
    assert f"Cannot reach the Hugging Face hub and {REPO} is not (fully) in the local cache" in line
    assert "-m FOLDER" in line


def test_offline_mode_without_the_model_is_one_clear_line(env, workdir):
    result = download("-m", "27t", env={**env, "HF_HUB_OFFLINE": "1"}, cwd=workdir)

    assert result.returncode == 1
    assert "google/medgemma-27b-text-it is not (fully) in the local cache" in _one_error_line(
        result
    )


def test_gated_model_without_access_says_where_to_accept_the_licence(hub, env, workdir):
    hub.error = (403, "GatedRepo")

    result = download(
        "-m", "4", "--hf-token", "hf_no_access", env={**env, "HF_ENDPOINT": hub.url}, cwd=workdir
    )

    assert result.returncode == 1
    line = _one_error_line(result)
    assert f"{REPO} is a gated model" in line
    assert f"https://huggingface.co/{REPO}" in line
    assert "--hf-token" in line


def test_unknown_repository_without_token_suggests_one(hub, env, workdir):
    hub.error = (404, "RepoNotFound")

    result = download("-m", "4", env={**env, "HF_ENDPOINT": hub.url}, cwd=workdir)

    assert result.returncode == 1
    line = _one_error_line(result)
    assert f"{REPO} was not found on the Hugging Face hub" in line
    assert "pass --hf-token" in line


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["-m", "demo"], ["cannot download 'demo'", "4, 27 or 27t"]),
        (["-m", "/srv/models/x"], ["cannot download '/srv/models/x'"]),
        ([], ["-m/--model", "required"]),
    ],
)
def test_download_refuses_what_it_cannot_fetch(args, names, env, workdir):
    result = download(*args, env=env, cwd=workdir)

    assert result.returncode == 2
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("medserver download: error: ")
    for name in names:
        assert name in line
