"""The GPU acceptance run works end to end before a GPU is lent: its --smoke mode.

`python -m bench.gpu_acceptance --smoke` runs the same code as on the GPU (the
model built from a shape, MedServer's engine worker and Transformers engine, every
section) with the demo model's tiny sizes on this CPU.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]


def test_the_gpu_acceptance_run_completes_on_the_cpu_in_smoke_mode():
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "bench.gpu_acceptance", "--smoke"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    spent = time.monotonic() - started
    out = result.stdout

    for heading in (
        "1. fidelity: prompt tokens the engine counted",
        "2. decode, one stream",
        "3. streams at once",
        "4. a newcomer joins running streams",
    ):
        assert heading in out, result.stdout + result.stderr
    rows = {line.split("  ")[0]: line for line in out.splitlines()}
    # The demo shape's image is 4 soft tokens, plus its start and end markers.
    assert rows["one image"].endswith("ok")
    assert rows["three images"].endswith("ok")
    assert "7 (batch of 8)" in rows and "8 (batch of 8)" in rows
    assert "8 streams give" in out
    # A system prompt adds as many tokens with thinking on as off.
    assert rows["system prompt, thinking on vs off"].endswith("ok"), out
    assert result.returncode == 0, result.stderr
    assert spent < 60, f"the smoke run took {spent:.0f} s"
