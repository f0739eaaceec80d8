"""Choosing the engine, remote engines, the watched child server, and falling back."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from inference.config import EngineConfig
from inference.demo_model import ensure_demo_model
from inference.engine import ChatTurn, Delta, Failed, Finished, GenerationRequest, Sampling
from inference.engine_select import Platform, choose_engine, load_engine, planned_engine
from inference.registry import model_spec_for
from inference.remote_engine import RemoteEngine
from inference.sglang_engine import (
    ChildServerEngine,
    find_sglang,
    sglang_command,
    tensor_parallel_size,
)
from inference.worker import EngineWorker
from tests.support.server import MEDSERVER, start_server

LINUX_H100 = Platform("Linux", (9, 0), "NVIDIA H100", sglang_installed=True)
WINDOWS = dataclasses.replace(LINUX_H100, system="Windows")
MAC = dataclasses.replace(LINUX_H100, system="Darwin", gpu_capability=None)
NO_SGLANG = dataclasses.replace(LINUX_H100, sglang_installed=False)


@pytest.mark.parametrize(
    ("config", "facts", "engine", "words"),
    [
        (EngineConfig(), LINUX_H100, "sglang", "H100"),
        (EngineConfig(force_transformers=True), LINUX_H100, "transformers", "--force"),
        (EngineConfig(), WINDOWS, "transformers", "Linux only"),
        (EngineConfig(), MAC, "transformers", "Darwin"),
        (EngineConfig(), Platform("Linux", None), "transformers", "no NVIDIA GPU"),
        (EngineConfig(), Platform("Linux", (7, 5), "T4", True), "transformers", "7.5 is below 8.0"),
        (EngineConfig(), NO_SGLANG, "transformers", "not installed"),
        (EngineConfig(quantize=True), LINUX_H100, "transformers", "-q: 4-bit NF4 runs on"),
        (EngineConfig(), dataclasses.replace(LINUX_H100, gpu_count=2), "sglang", "2 × NVIDIA H100"),
        (EngineConfig(engine_url="http://gpu-box:30000"), LINUX_H100, "remote", "gpu-box"),
    ],
)  # fmt: skip
def test_engine_is_chosen_from_flags_and_platform(config, facts, engine, words):
    choice = choose_engine(config, facts)
    assert choice.engine == engine
    assert words in choice.reason


def test_sglang_that_cannot_start_falls_back_to_transformers(tmp_path):
    # This machine has no sglang: its launcher really starts and really fails.
    config = EngineConfig(model="demo", data_dir=tmp_path)
    engine = load_engine(config, LINUX_H100)
    assert engine.name == "transformers"
    assert "SGLang could not start" in engine.choice_reason
    assert "sglang" in engine.choice_reason.lower()


def launched(model: str, **options) -> list[str]:
    """The SGLang command MedServer builds for `-m model` with these options."""
    spec = model_spec_for(model)
    return sglang_command(
        Path("/models/x"), spec, python="/opt/sglang/bin/python", port=30000, api_key="k",
        context=8192, **options,
    )  # fmt: skip


@pytest.fixture(scope="module")
def multimodal_folder(tmp_path_factory) -> str:
    return str(ensure_demo_model(tmp_path_factory.mktemp("folder") / "demo"))


@pytest.mark.parametrize("model", ["4", "27", "demo", "multimodal folder"])
def test_sglang_is_told_to_take_images_for_a_multimodal_model(model, multimodal_folder):
    # Without --enable-multimodal SGLang drops image parts and answers without them.
    command = launched(multimodal_folder if model == "multimodal folder" else model)
    assert "--enable-multimodal" in command


def test_sglang_serves_the_text_model_as_text():
    assert "--enable-multimodal" not in launched("27t")


def test_sglang_chooses_its_own_memory_fraction_unless_one_is_given():
    assert "--mem-fraction-static" not in launched("4")
    assert "--mem-fraction-static" not in launched("4", memory=None)
    command = launched("4", memory=0.8)
    assert command[command.index("--mem-fraction-static") + 1] == "0.8"


def test_sglang_runs_on_the_given_interpreter_over_every_gpu():
    command = launched("27", tp_size=4)
    assert command[:3] == ["/opt/sglang/bin/python", "-m", "sglang.launch_server"]
    assert command[command.index("--tp-size") + 1] == "4"


@pytest.mark.parametrize(("gpus", "tp_size"), [(0, 1), (1, 1), (2, 2), (3, 2), (4, 4), (8, 8)])
def test_tensor_parallel_size_follows_the_gpus(gpus, tp_size):
    # Gemma 3's heads split over a power of two: a third GPU is left out.
    assert tensor_parallel_size(gpus) == tp_size


def fake_sglang_python(folder: Path, version: str = "0.5.23") -> Path:
    """An interpreter standing in for SGLang's: it reports sglang `version`, and when
    asked to start SGLang's server it writes down how it was called and fails, as
    SGLang does on a machine without a GPU."""
    python = folder / "sglang-env" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-c" ]; then echo "' + version + '"; exit 0; fi\n'
        f'printf "%s\\n" "$0" "$@" > "{folder}/launched.txt"\n'
        f'printf "%s\\n" "$PATH" > "{folder}/path.txt"\n'
        "echo 'RuntimeError: CUDA driver missing'\n"
        "exit 3\n"
    )
    python.chmod(0o755)
    return python


def test_medserver_starts_sglang_with_the_configured_interpreter(tmp_path):
    fake = fake_sglang_python(tmp_path)
    config = EngineConfig(model="demo", data_dir=tmp_path, sglang_python=str(fake))
    # The machine's facts as detected, with an H100 in place of this CPU.
    found = Platform.detect(config.sglang_python)
    assert (found.sglang_version, found.sglang_python) == ("0.5.23", str(fake))
    facts = dataclasses.replace(
        found, system="Linux", gpu_capability=(9, 0), gpu_name="H100", gpu_count=3
    )

    engine = load_engine(config, facts)
    try:
        child = (tmp_path / "launched.txt").read_text().splitlines()
        assert child[:3] == [str(fake), "-m", "sglang.launch_server"]
        assert "--enable-multimodal" in child
        assert child[child.index("--tp-size") + 1] == "2"
        assert "--mem-fraction-static" not in child
        # As if its environment were activated: its own programs (ninja) come first.
        path = (tmp_path / "path.txt").read_text().strip().split(os.pathsep)
        assert path[0] == str(fake.parent)
        # It could not start here, and the reason says which SGLang, from where, and why.
        assert engine.name == "transformers"
        assert "SGLang 0.5.23" in engine.choice_reason
        assert str(fake) in engine.choice_reason
        assert "CUDA driver missing" in engine.choice_reason
    finally:
        engine.close()


def test_an_interpreter_without_sglang_is_not_taken_for_an_install(tmp_path):
    assert "has no sglang package" in find_sglang(sys.executable).problem
    missing = find_sglang(tmp_path / "nowhere" / "python")
    assert missing.version == "" and "does not exist" in missing.problem
    facts = dataclasses.replace(LINUX_H100, sglang_installed=False, sglang_problem=missing.problem)
    reason = choose_engine(EngineConfig(), facts).reason
    assert "SGLang is not installed" in reason and "--sglang-python" in reason
    assert str(tmp_path / "nowhere") in reason


def ask(text: str, tokens: int = 16) -> GenerationRequest:
    return GenerationRequest((ChatTurn("user", text),), Sampling(tokens, 0.0, 1.0))


async def answer(worker: EngineWorker, request: GenerationRequest) -> tuple[str, object]:
    text = []
    async for event in worker.submit(request).events():
        if isinstance(event, Delta):
            text.append(event.text)
        elif isinstance(event, Finished | Failed):
            return "".join(text), event
    raise AssertionError("no end")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Another MedServer on loopback: a real OpenAI-compatible server, with a token."""
    # As an engine for other servers, one user (the token) runs many answers at once.
    server = start_server(tmp_path_factory.mktemp("engine-server"), "--max-user-streams", "8")
    server.create_user("engine")
    server.api_key = server.manage("create_api_token", "engine").strip().splitlines()[-1]
    yield server
    server.stop()


def test_the_start_banner_says_which_sglang_will_run_or_why_none(served):
    installed = dataclasses.replace(
        LINUX_H100, sglang_version="0.5.23", sglang_python="/srv/medserver/.venv-sglang/bin/python"
    )
    line = planned_engine(EngineConfig(), installed)
    assert line.startswith("Engine: SGLang (")
    assert "SGLang 0.5.23 (/srv/medserver/.venv-sglang/bin/python)" in line
    # This machine has no GPU: its own server says so in the banner.
    banner = "".join(served.output)
    assert "Engine: Transformers (no NVIDIA GPU with CUDA was found)" in banner


def test_remote_engine_refuses_a_wrong_key_or_model(served):
    spec = model_spec_for("demo")
    with pytest.raises(Exception, match="refused the API key"):
        RemoteEngine(served.url, spec, api_key="ms_wrong").load()
    with pytest.raises(Exception, match="does not serve"):
        RemoteEngine(served.url, spec, api_key=served.api_key, model="gpt-4o").load()


@pytest.mark.asyncio
async def test_engine_url_streams_the_same_answers_as_the_local_engine(served, engine):
    config = EngineConfig(model="demo", engine_url=served.url, engine_api_key=served.api_key)
    remote = EngineWorker(lambda: load_engine(config), "remote").start()
    try:
        assert remote.wait_ready(30), remote.state.reason
        assert remote.state.engine == "remote"
        assert remote.engine.model == "medserver-demo"
        # Another MedServer renders the probe as this one's template does, and sees images.
        assert remote.state.checks["model"].startswith("prompts render as -m's")
        assert remote.state.checks["images"].startswith("seen")
        requests = [ask(f"Question {n} about sepsis") for n in range(4)]
        over_the_wire = await asyncio.gather(*(answer(remote, r) for r in requests))
        here = [await answer(engine, r) for r in requests]
        assert [text for text, _ in over_the_wire] == [text for text, _ in here]
        ends = [end for _, end in over_the_wire]
        assert all(isinstance(end, Finished) and end.completion_tokens > 0 for end in ends)
    finally:
        remote.stop()


@pytest.mark.asyncio
async def test_engine_url_continues_a_cut_off_answer_as_the_local_engine_does(served, engine):
    # continue_final_message / add_generation_prompt, as vLLM and SGLang take them.
    question = "Causes of acute chest pain?"
    first_part, cut = await answer(engine, ask(question, tokens=6))
    assert cut.reason == "length"
    turns = (ChatTurn("user", question), ChatTurn("assistant", first_part))
    go_on = GenerationRequest(turns, Sampling(6, 0.0, 1.0), continue_answer=True)
    config = EngineConfig(model="demo", engine_url=served.url, engine_api_key=served.api_key)
    remote = EngineWorker(lambda: load_engine(config), "remote").start()
    try:
        assert remote.wait_ready(30), remote.state.reason
        over_the_wire, end = await answer(remote, go_on)
        here, _ = await answer(engine, go_on)
        whole, _ = await answer(engine, ask(question, tokens=12))
        assert isinstance(end, Finished) and over_the_wire == here
        assert first_part + over_the_wire == whole
    finally:
        remote.stop()


def medserver_child(data_dir):
    def command(port: int, key: str) -> list[str]:
        return [
            str(MEDSERVER), "-m", "demo", "-p", str(port), "-ip", "127.0.0.1",
            "--data-dir", str(data_dir), "--default-temperature", "0",
        ]  # fmt: skip

    return command


@pytest.mark.asyncio
async def test_a_child_server_is_watched_restarted_and_finally_replaced(served, settings):
    # The child is another `medserver -m demo` sharing the served data dir (and so
    # its API token), standing in for SGLang's server: same launcher, client, watchdog.
    child = ChildServerEngine(
        model_spec_for("demo"),
        medserver_child(served.data_dir),
        name="child",
        health_path="/api/health",
        start_timeout=60,
        api_key=served.api_key,
        restarts=1,
    )
    config = dataclasses.replace(settings.MEDSERVER, model="demo").engine_config()

    def fallback(reason: str):
        from inference.engine_select import fallback_engine

        return fallback_engine(config, reason)

    def load():
        child.load()
        return child

    worker = EngineWorker(load, "child", fallback=fallback).start()
    try:
        assert worker.wait_ready(60), worker.state.reason
        text, end = await answer(worker, ask("First"))
        assert isinstance(end, Finished) and text

        os.killpg(child._process.pid, signal.SIGKILL)  # the server dies…
        deadline = time.monotonic() + 60
        while child._healthy.is_set():  # until the watchdog notices
            await asyncio.sleep(0.1)
        while not child._healthy.is_set():
            assert time.monotonic() < deadline, "the watchdog did not restart the server"
            await asyncio.sleep(0.2)
        text, end = await answer(worker, ask("After a restart"))  # …and serves again
        assert isinstance(end, Finished) and text

        os.killpg(child._process.pid, signal.SIGKILL)  # dies again: a crash loop
        while worker.state.engine != "transformers":
            assert time.monotonic() < deadline + 60, "no fallback to Transformers"
            await asyncio.sleep(0.2)
        assert "died" in worker.state.engine_reason
        assert child._process.poll() is not None  # stopped, its memory freed
        text, end = await answer(worker, ask("On the fallback"))
        assert isinstance(end, Finished) and text
    finally:
        worker.stop()
        child.close()


def test_a_child_that_never_starts_is_reported_clearly(tmp_path):
    child = ChildServerEngine(
        model_spec_for("demo"),
        lambda port, key: [
            sys.executable,
            "-c",
            "print('CUDA driver missing'); raise SystemExit(3)",
        ],
        name="sglang",
        start_timeout=30,
    )
    with pytest.raises(Exception, match=r"exited while starting \(3\): CUDA driver missing"):
        child.load()
