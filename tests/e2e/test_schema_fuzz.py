"""schemathesis, with every check, against the live server's own OpenAPI document:
no 5xx, no response the document does not describe, no request it allows refused
(beyond what it documents it cannot express), none it forbids accepted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.server import start_server

CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
FUZZ_SECONDS = 60  # about two minutes of CI with the server's start and coverage phase


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # A short context keeps the longest answer a fuzzer may ask for to seconds.
    running = start_server(tmp_path_factory.mktemp("fuzz-server"), "--max-model-len", "512")
    # A service token with room for a fuzzer's pace; the server keeps its default flags.
    output = running.manage(
        "create_api_token", "--service", "fuzzer", "--rate", "100000/minute", "--streams", "4"
    )
    running.api_key = output.strip().splitlines()[-1]
    yield running
    running.stop()


def test_schemathesis_finds_no_failure_with_every_check(server, tmp_path):
    result = subprocess.run(
        [
            str(SCHEMATHESIS),
            "--config-file",
            str(CONFIG),
            "run",
            f"{server.url}/api/schema",
            "--header",
            f"Authorization: Bearer {server.api_key}",
            "--checks",
            "all",
            "--max-time",
            str(FUZZ_SECONDS),
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--seed",
            "16",  # the same cases on every run; change it to explore others
        ],
        capture_output=True,
        text=True,
        timeout=FUZZ_SECONDS + 120,
        cwd=tmp_path,  # its cache folder goes there, not into the checkout
        check=False,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-12000:]
    assert "passed" in report and "Failures:" not in report
    assert not [line for line in server.output if "Internal Server Error" in line]
