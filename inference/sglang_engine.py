"""SGLang: its server runs as a child process on loopback, watched and restarted.

MedServer talks to it through the same OpenAI-compatible client as any
remote engine. If it cannot start, or keeps dying, it is stopped (freeing
the GPU) and the worker falls back to the Transformers engine.
"""

from __future__ import annotations

import collections
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from inference.engine import EngineError, Job
from inference.registry import ModelSpec
from inference.remote_engine import RemoteEngine

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Asks an interpreter for its sglang's version without importing sglang (seconds
# of CUDA set-up): the package metadata answers in a fraction of a second.
_VERSION_PROBE = "from importlib.metadata import version; print(version('sglang'))"


@dataclass(frozen=True)
class SGLangInstall:
    """An interpreter, and the sglang it has: `version`, or `problem` saying why none."""

    python: str
    version: str = ""
    problem: str = ""


def default_sglang_python() -> Path:
    """The interpreter install.sh makes for SGLang: .venv-sglang beside MedServer's .venv.

    SGLang pins its own torch and transformers, which MedServer's environment
    cannot share, so it lives in an environment of its own.
    """
    checkout = Path(__file__).resolve().parents[1]
    candidates = [
        root / ".venv-sglang" / "bin" / "python" for root in (checkout, Path(sys.prefix).parent)
    ]
    return next((path for path in candidates if path.exists()), candidates[0])


def find_sglang(python: str | Path, timeout: float = 30) -> SGLangInstall:
    """Return which sglang `python` has, or why it has none; never raises."""
    python = str(python)
    if not Path(python).exists():
        return SGLangInstall(python, problem=f"{python} does not exist")
    try:
        answer = subprocess.run(
            [python, "-c", _VERSION_PROBE], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return SGLangInstall(python, problem=f"{python} did not answer in {timeout:.0f} s")
    except OSError as error:
        return SGLangInstall(python, problem=f"{python} cannot run ({error.strerror})")
    if answer.returncode != 0 or not answer.stdout.strip():
        return SGLangInstall(python, problem=f"{python} has no sglang package")
    return SGLangInstall(python, version=answer.stdout.strip().splitlines()[-1])


def environment_of(python: str) -> dict[str, str]:
    """The variables that make `python`'s environment the child's, as if activated.

    SGLang runs programs of its environment by name (flashinfer compiles its
    kernels with the `ninja` installed beside it), so that bin folder comes first.
    """
    bin_dir = str(Path(python).parent)
    return {"PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", os.defpath)])}


def tensor_parallel_size(gpu_count: int) -> int:
    """GPUs to split the model over: the largest power of two that this machine has.

    Gemma 3's attention heads (8 on the 4B, 32 on the 27B) split evenly only
    over a power of two; a third GPU is left for other work.
    """
    size = 1
    while size * 2 <= gpu_count:
        size *= 2
    return size


def sglang_command(
    model_dir: Path,
    spec: ModelSpec,
    *,
    python: str,
    port: int,
    api_key: str,
    context: int,
    memory: float | None = None,
    tp_size: int = 1,
) -> list[str]:
    """The command line of SGLang's OpenAI-compatible server for this model, run by `python`.

    `memory` None leaves the fraction of GPU memory to SGLang, which lowers it
    for vision models to leave room for the image encoder.
    """
    command = [
        python, "-m", "sglang.launch_server",
        "--model-path", str(model_dir),
        "--served-model-name", spec.api_id,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--api-key", api_key,
        "--context-length", str(context),
        "--tp-size", str(tp_size),
    ]  # fmt: skip
    if spec.multimodal:
        # Without it SGLang serves Gemma 3 as text only and drops every image part.
        command.append("--enable-multimodal")
    if memory is not None:
        command += ["--mem-fraction-static", str(memory)]
    return command


class ChildServerEngine(RemoteEngine):
    """A RemoteEngine whose server is a child process this engine starts and watches.

    `command(port, api_key)` builds the child's command line; the child must
    serve the OpenAI-compatible API and answer GET `health_path` with 200
    once it is ready.
    """

    RESTART_WINDOW = 600  # seconds in which `restarts` deaths mean a crash loop

    def __init__(
        self,
        spec: ModelSpec,
        command,
        *,
        name: str,
        health_path: str = "/health",
        start_timeout: float = 900,
        api_key: str | None = None,
        restarts: int = 3,
        env: dict[str, str] | None = None,
        **remote,
    ) -> None:
        """`remote`: RemoteEngine's settings (model_dir, max_model_len, max_concurrency)."""
        self.restarts = restarts
        self._env = env or {}  # added to this process's environment for the child
        self.port = free_port()
        key = api_key or secrets.token_urlsafe(24)
        super().__init__(f"http://127.0.0.1:{self.port}", spec, api_key=key, **remote)
        self.name = name
        self._command = command
        self._health_path = health_path
        self._start_timeout = start_timeout
        self._process: subprocess.Popen | None = None
        self._log_tail: collections.deque[str] = collections.deque(maxlen=20)
        self._restarts: collections.deque[float] = collections.deque()
        self._closing = False
        self._healthy = threading.Event()

    def load(self) -> None:
        self._start()
        super().load()
        threading.Thread(target=self._watch, name=f"{self.name}-watchdog", daemon=True).start()

    def describe(self) -> dict[str, str]:
        return {"server": self.base_url, "pid": str(self._process.pid if self._process else "")}

    def run_one(self, job: Job) -> None:
        if not self._healthy.wait(timeout=self._start_timeout):
            job.fail(f"The {self.name} server is restarting; try again shortly.", "unavailable")
            return
        super().run_one(job)

    def close(self) -> None:
        """Stop the child (and so free its GPU memory)."""
        self._closing = True
        self._stop_child()
        super().close()

    def _start(self) -> None:
        self._healthy.clear()
        command = self._command(self.port, self.api_key)
        log.info("Starting the %s server: %s", self.name, " ".join(command[:4]) + " …")
        try:
            self._process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,  # its own process group: stopped as a whole
                env={**os.environ, "PYTHONUNBUFFERED": "1", **self._env},
            )
        except OSError as error:  # no such interpreter, or not executable
            raise EngineError(
                f"The {self.name} server could not be run ({command[0]}: {error.strerror})"
            ) from error
        reader = threading.Thread(target=self._read_output, args=(self._process,), daemon=True)
        reader.start()
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                reader.join(timeout=2)  # its last lines say why; they may still be in the pipe
                tail = " | ".join(list(self._log_tail)[-3:]) or "no output"
                raise EngineError(f"The {self.name} server exited while starting ({code}): {tail}")
            if self._answers_health():
                self._healthy.set()
                log.info("The %s server is ready on port %d", self.name, self.port)
                return
            time.sleep(0.5)
        self._stop_child()
        raise EngineError(f"The {self.name} server did not become ready in time.")

    def _answers_health(self) -> bool:
        try:
            response = self._client.get(f"{self.base_url}{self._health_path}", timeout=2)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def _read_output(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self._log_tail.append(line.rstrip())
            log.debug("%s: %s", self.name, line.rstrip())

    def _watch(self) -> None:
        """Restart the child when it dies; give up after too many deaths."""
        while not self._closing:
            time.sleep(1)
            if self._closing or self._process is None or self._process.poll() is None:
                continue
            self._healthy.clear()
            now = time.monotonic()
            self._restarts.append(now)
            while self._restarts and now - self._restarts[0] > self.RESTART_WINDOW:
                self._restarts.popleft()
            if len(self._restarts) > self.restarts:
                self.failed_reason = (
                    f"the {self.name} server died {len(self._restarts)} times in "
                    f"{self.RESTART_WINDOW // 60} minutes"
                )
                log.error("Giving up on %s: %s", self.name, self.failed_reason)
                self._stop_child()
                return
            log.warning(
                "The %s server stopped (%s); restarting it", self.name, self._process.returncode
            )
            try:
                self._start()
            except EngineError as error:
                log.error("%s", error)

    def _stop_child(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
