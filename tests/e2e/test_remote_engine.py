"""One prompt, every engine: what the clinician sends is what the model sees.

A real third-party OpenAI-compatible server, `transformers serve` (written by
Hugging Face, not here), serves the demo model's folder on this CPU. MedServer
runs against it with --engine-url, and beside it MedServer runs the same model
in process. The same requests through both must reach the model whole: the
prompt each engine reports (usage.prompt_tokens, counted by the engine itself)
is the same, a system prompt adds its tokens with thinking on as with it off,
an image adds its image tokens, a DICOM series its slices and their labels.
The remote path then behaves as the local one does: streaming with Stop,
stop sequences, a conversation longer than the context, and a server of
another model refused at start.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import httpx
import openai
import pytest
from PIL import Image

from inference.demo_model import ensure_demo_model
from inference.engine import ChatTurn, EngineError, GenerationRequest, Sampling
from inference.registry import MODELS
from inference.remote_engine import RemoteEngine
from tests.dicom_files import ct_series, zip_of
from tests.support.server import free_port, start_server

TRANSFORMERS_CLI = Path(sys.executable).parent / "transformers"
MODEL = "medserver-demo"


@dataclasses.dataclass
class ThirdPartyServer:
    url: str
    model_dir: Path
    process: subprocess.Popen
    output: list[str]


@pytest.fixture(scope="module")
def transformers_serve(tmp_path_factory):
    """`transformers serve` on the demo model's folder, offline, on a free port."""
    model_dir = ensure_demo_model(tmp_path_factory.mktemp("third-party") / "models" / "demo")
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MEDSERVER_", "HF_"))}
    environ.update({"HF_HUB_OFFLINE": "1", "HF_HOME": str(model_dir.parent / "hf-home")})
    process = subprocess.Popen(
        [str(TRANSFORMERS_CLI), "serve", str(model_dir), "--host", "127.0.0.1"]
        + ["--port", str(port), "--device", "cpu", "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environ,
    )
    server = ThirdPartyServer(f"http://127.0.0.1:{port}", model_dir, process, [])
    threading.Thread(target=lambda: server.output.extend(process.stdout), daemon=True).start()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError("transformers serve exited:\n" + "".join(server.output))
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        raise AssertionError("transformers serve never answered:\n" + "".join(server.output))
    yield server
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


def _with_token(server):
    server.api_key = server.admin_token("radiology")
    return server


@pytest.fixture(scope="module")
def remote(tmp_path_factory, transformers_serve):
    """`medserver -m demo --engine-url <transformers serve>`."""
    running = start_server(
        tmp_path_factory.mktemp("remote-medserver"),
        "--engine-url",
        transformers_serve.url,
        "--max-user-streams",
        "1",
    )
    yield _with_token(running)
    running.stop()


@pytest.fixture(scope="module")
def local(demo_server):
    """`medserver -m demo`, the model in process (the session's shared one): the reference."""
    return _with_token(dataclasses.replace(demo_server))


def client_of(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=server.api_key, max_retries=0)


def png_uri(shade: int = 90) -> str:
    out = io.BytesIO()
    Image.new("RGB", (96, 80), (shade, shade, shade)).save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def series_uri(slices: int = 3) -> str:
    data = zip_of({f"series/IM{n}.dcm": raw for n, raw in enumerate(ct_series(slices), 1)})
    return "data:application/zip;base64," + base64.b64encode(data).decode()


def user(text: str, *images: str) -> dict:
    parts = [{"type": "image_url", "image_url": {"url": uri}} for uri in images]
    return {"role": "user", "content": [*parts, {"type": "text", "text": text}]}


SYSTEM = {"role": "system", "content": "You are a radiologist. Answer in French. " * 12}
HISTORY = [
    {"role": "user", "content": "A 54-year-old smoker with a cough for three months."},
    {"role": "assistant", "content": "Which findings concern you on the film?"},
]

# name -> (messages, thinking): the clinician's requests that must arrive whole.
REQUESTS = {
    "question": ([user("Signs of pneumothorax?")], False),
    "system, thinking off": ([SYSTEM, user("Signs of pneumothorax?")], False),
    "system, thinking on": ([SYSTEM, user("Signs of pneumothorax?")], True),
    "question, thinking on": ([user("Signs of pneumothorax?")], True),
    "history": ([SYSTEM, *HISTORY, user("And the differential?")], False),
    "one image": ([user("Findings?", png_uri())], False),
    "three images": ([user("Compare.", png_uri(40), png_uri(90), png_uri(200))], False),
    "ct series": ([user("Findings?", series_uri())], False),
}


def prompt_tokens(server, messages: list[dict], thinking: bool) -> int:
    completion = client_of(server).chat.completions.create(
        model=MODEL,
        messages=messages,
        max_tokens=1,
        temperature=0,
        extra_body={"chat_template_kwargs": {"enable_thinking": thinking}},
    )
    return completion.usage.prompt_tokens


def test_every_request_reaches_the_third_party_engine_as_it_reaches_the_local_one(local, remote):
    local_tokens = {name: prompt_tokens(local, *request) for name, request in REQUESTS.items()}
    remote_tokens = {name: prompt_tokens(remote, *request) for name, request in REQUESTS.items()}

    # The same prompt, token for token, whichever engine renders it.
    assert remote_tokens == local_tokens
    for tokens in (local_tokens, remote_tokens):
        system_off = tokens["system, thinking off"] - tokens["question"]
        system_on = tokens["system, thinking on"] - tokens["question, thinking on"]
        assert system_off > 100
        assert abs(system_on - system_off) <= 1  # the space that joins Google's instruction
        image = MODELS["demo"].image_tokens
        assert tokens["one image"] - tokens["question"] >= image
        assert tokens["three images"] - tokens["question"] >= 3 * image
        # Three slices, each with its image tokens and its label.
        assert tokens["ct series"] - tokens["question"] >= 3 * (image + 5)


def test_the_remote_engines_checks_are_shown_in_health(remote):
    details = httpx.get(f"{remote.url}/api/health").json()
    assert details["status"] == "ready"
    assert details["engine"] == "remote"
    text = str(details)
    assert "prompts render as -m's" in text
    assert "seen: a test image added" in text


def test_streaming_with_stop_frees_the_place_at_once(remote):
    client = client_of(remote)
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[user("Write a long report.")],
        max_tokens=2000,
        stream=True,
        temperature=0,
        extra_body={"ignore_eos": False},
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    stream.close()  # the clinician pressed Stop
    # --max-user-streams 1: the next answer is only accepted once the first let go.
    deadline = time.monotonic() + 5
    while True:
        try:
            answer = client.chat.completions.create(
                model=MODEL, messages=[user("Next question")], max_tokens=3
            )
            break
        except openai.RateLimitError:
            assert time.monotonic() < deadline, "the stopped answer kept its place"
            time.sleep(0.2)
    assert answer.usage.completion_tokens <= 3


def test_stop_sequences_end_the_answer_on_a_server_that_cannot_take_them(remote):
    # transformers serve fails on `stop` (500): MedServer applies it itself.
    completion = client_of(remote).chat.completions.create(
        model=MODEL,
        messages=[user("Describe a chest film.")],
        max_tokens=40,
        temperature=0,
        stop=["e"],
        extra_body={"chat_template_kwargs": {"enable_thinking": False}},
    )
    assert "e" not in completion.choices[0].message.content


def test_a_conversation_longer_than_the_context_is_refused_plainly(remote):
    with pytest.raises(openai.BadRequestError) as refused:
        client_of(remote).chat.completions.create(
            model=MODEL,
            messages=[
                user("word " * 8_000),
                {"role": "assistant", "content": "Go on."},
                user("word " * 8_000),
            ],
            max_tokens=5,
        )
    message = refused.value.body["message"]
    assert "tokens long" in message and "context holds 8192" in message


def test_a_long_conversation_that_fits_gets_its_answer_clamped_to_the_context(remote):
    # About 8,150 tokens of prompt leave fewer than the 200 asked for: the budget is
    # clamped (as the in-process engine does) instead of being sent as asked.
    completion = client_of(remote).chat.completions.create(
        model=MODEL,
        messages=[user("lung " * 4_020)],
        max_tokens=200,
        temperature=0,
        extra_body={"chat_template_kwargs": {"enable_thinking": False}},
    )
    usage = completion.usage
    assert usage.prompt_tokens > 8_000
    assert usage.prompt_tokens + usage.completion_tokens <= 8192


def test_a_server_of_another_model_is_refused_at_start(tmp_path, transformers_serve):
    # -m 4 names MedGemma 1.5 4B; the server runs the demo model, and MedGemma's files
    # are not here to compare prompts: MedServer says so instead of serving.
    server = start_server(
        tmp_path, "--engine-url", transformers_serve.url, model="4", wait_for="error"
    )
    try:
        reason = server.health()["reason"]
        assert "is not MedGemma 1.5 4B (-m 4)" in reason
    finally:
        server.stop()


def test_images_are_refused_by_an_engine_whose_prompt_does_not_grow_for_them(
    transformers_serve,
):
    # An engine whose test image adds fewer tokens than the model's image takes is one
    # that drops images; asked about an image, it must refuse rather than answer blind.
    spec = dataclasses.replace(MODELS["demo"], image_tokens=256)
    engine = RemoteEngine(
        transformers_serve.url, spec, model_dir=transformers_serve.model_dir, max_model_len=8192
    )
    engine.load()
    try:
        assert not engine.sees_images
        assert "NOT seen" in engine.checks["images"]
        png = base64.b64decode(png_uri().split(",", 1)[1])
        request = GenerationRequest((ChatTurn("user", "Findings?", (png,)),), Sampling(4))
        with pytest.raises(EngineError, match="does not see images"):
            engine.prepare(request)
        # Text goes on; a budget past the context is clamped to what the prompt leaves.
        long = GenerationRequest((ChatTurn("user", "lung " * 4_020),), Sampling(200))
        prompt = engine.encoder.count(long, 8192)
        assert prompt > 8_000
        call = engine.prepare(long)
        assert (call.prompt_tokens, call.body["max_tokens"]) == (prompt, 8192 - prompt)
        assert "top_k" not in call.body  # transformers serve refuses it
    finally:
        engine.close()


@pytest.mark.asyncio
async def test_a_managed_child_server_gets_the_same_prompts(tmp_path):
    """The path SGLang takes (a child server MedServer starts, watches and talks to),
    with `transformers serve` as the child: checked at load, the same prompts."""
    from inference.sglang_engine import ChildServerEngine
    from inference.tokenizing import PromptEncoder
    from inference.worker import EngineWorker

    model_dir = ensure_demo_model(tmp_path / "models" / "demo")
    spec = MODELS["demo"]

    def command(port: int, api_key: str) -> list[str]:
        return [str(TRANSFORMERS_CLI), "serve", str(model_dir), "--host", "127.0.0.1"] + [
            "--port", str(port), "--device", "cpu", "--log-level", "warning"
        ]  # fmt: skip

    def load():
        engine = ChildServerEngine(
            spec,
            command,
            name="transformers-serve",
            start_timeout=240,
            env={"HF_HUB_OFFLINE": "1"},
            model_dir=model_dir,
            max_model_len=8192,
        )
        engine.load()
        return engine

    worker = EngineWorker(load, spec.label).start()
    try:
        assert worker.wait_ready(300), worker.state.reason
        assert worker.state.checks["model"].startswith("prompts render as -m's")
        assert worker.state.checks["images"].startswith("seen")
        png = base64.b64decode(png_uri().split(",", 1)[1])
        turns = (
            ChatTurn("system", "You are a radiologist."),
            ChatTurn("user", "Findings?", (png, png), ("CT slice 1 of 2", "CT slice 2 of 2")),
        )
        request = GenerationRequest(turns, Sampling(2, 0.0, 1.0), thinking=True)
        events = [event async for event in worker.submit(request).events()]
        local = PromptEncoder(spec, model_dir).count(request, 8192)
        assert events[-1].prompt_tokens == local
    finally:
        worker.stop()
