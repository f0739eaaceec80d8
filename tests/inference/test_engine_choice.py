"""Choosing the engine, remote engines, the watched child server, and falling back."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys
import time

import pytest

from inference.engine import ChatTurn, Delta, Failed, Finished, GenerationRequest, Sampling
from inference.engine_select import Platform, choose_engine, load_engine
from inference.registry import model_spec_for
from inference.remote_engine import RemoteEngine
from inference.sglang_engine import ChildServerEngine
from inference.worker import EngineWorker
from medserver_site.config import ServerConfig
from tests.e2e.conftest import MEDSERVER, start_server, stop_server

LINUX_H100 = Platform("Linux", (9, 0), "NVIDIA H100", sglang_installed=True)
WINDOWS = dataclasses.replace(LINUX_H100, system="Windows")
MAC = dataclasses.replace(LINUX_H100, system="Darwin", gpu_capability=None)
NO_SGLANG = dataclasses.replace(LINUX_H100, sglang_installed=False)


@pytest.mark.parametrize(
    ("config", "facts", "engine", "words"),
    [
        (ServerConfig(), LINUX_H100, "sglang", "H100"),
        (ServerConfig(force_transformers=True), LINUX_H100, "transformers", "--force"),
        (ServerConfig(), WINDOWS, "transformers", "Linux only"),
        (ServerConfig(), MAC, "transformers", "Darwin"),
        (ServerConfig(), Platform("Linux", None), "transformers", "no NVIDIA GPU"),
        (ServerConfig(), Platform("Linux", (7, 5), "T4", True), "transformers", "7.5 is below 8.0"),
        (ServerConfig(), NO_SGLANG, "transformers", "not installed"),
        (ServerConfig(engine_url="http://gpu-box:30000"), LINUX_H100, "remote", "gpu-box"),
    ],
)  # fmt: skip
def test_engine_is_chosen_from_flags_and_platform(config, facts, engine, words):
    choice = choose_engine(config, facts)
    assert choice.engine == engine
    assert words in choice.reason


def test_sglang_that_cannot_start_falls_back_to_transformers(tmp_path):
    # This machine has no sglang: its launcher really starts and really fails.
    config = ServerConfig(model="demo", data_dir=tmp_path)
    engine = load_engine(config, LINUX_H100)
    assert engine.name == "transformers"
    assert "SGLang could not start" in engine.choice_reason
    assert "sglang" in engine.choice_reason.lower()


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
    server.manage(
        "createsuperuser", "--noinput", "--username", "engine", "--email", "e@clinic.example",
        DJANGO_SUPERUSER_PASSWORD="a-long-passphrase",
    )  # fmt: skip
    server.api_key = server.manage("create_api_token", "engine").strip().splitlines()[-1]
    yield server
    stop_server(server)


def test_remote_engine_refuses_a_wrong_key_or_model(served):
    spec = model_spec_for("demo")
    with pytest.raises(Exception, match="refused the API key"):
        RemoteEngine(served.url, spec, api_key="ms_wrong").load()
    with pytest.raises(Exception, match="does not serve"):
        RemoteEngine(served.url, spec, api_key=served.api_key, model="gpt-4o").load()


@pytest.mark.asyncio
async def test_engine_url_streams_the_same_answers_as_the_local_engine(served, engine):
    config = ServerConfig(model="demo", engine_url=served.url, engine_api_key=served.api_key)
    remote = EngineWorker(lambda: load_engine(config), "remote").start()
    try:
        assert remote.wait_ready(30), remote.state.reason
        assert remote.state.engine == "remote"
        assert remote.engine.model == "medserver-demo"
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
    config = ServerConfig(model="demo", engine_url=served.url, engine_api_key=served.api_key)
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
    config = dataclasses.replace(settings.MEDSERVER, model="demo")

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
