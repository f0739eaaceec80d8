"""The engine worker and the Transformers engine, on the real demo model."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading

import pytest
from PIL import Image

from inference.config import EngineConfig
from inference.engine import ChatTurn, Delta, Failed, Finished, GenerationRequest, Sampling
from inference.engine_select import load_engine
from inference.prompting import THINKING_INSTRUCTION
from inference.thinking import split_trace
from inference.worker import EngineUnavailable, EngineWorker

GREEDY = Sampling(max_new_tokens=12, temperature=0.0)


async def collect(worker: EngineWorker, request: GenerationRequest) -> list:
    handle = worker.submit(request)
    return [event async for event in handle.events()]


def ask(text: str, *, images=(), sampling=GREEDY, thinking=False) -> GenerationRequest:
    return GenerationRequest((ChatTurn("user", text, tuple(images)),), sampling, thinking)


@pytest.mark.asyncio
async def test_worker_streams_deltas_then_finished(engine):
    events = await collect(engine, ask("Describe a normal chest X-ray."))
    *deltas, finished = events
    assert isinstance(finished, Finished)
    assert all(isinstance(d, Delta) for d in deltas)
    assert 0 < finished.completion_tokens <= 12
    assert finished.prompt_tokens > 5
    assert finished.first_token_seconds is not None
    assert finished.reason in ("stop", "length")


@pytest.mark.asyncio
async def test_greedy_answers_are_reproducible(engine):
    first = await collect(engine, ask("Same question twice"))
    second = await collect(engine, ask("Same question twice"))
    text = ["".join(e.text for e in events if isinstance(e, Delta)) for events in (first, second)]
    assert text[0] == text[1]


@pytest.mark.asyncio
async def test_images_reach_the_vision_tower(engine, tmp_path):
    path = tmp_path / "cxr.png"
    Image.new("L", (300, 200), color=90).save(path)
    with_image = await collect(engine, ask("What do you see?", images=[path]))
    without = await collect(engine, ask("What do you see?"))
    # Each image adds its soft tokens (and markers) to the prompt.
    assert with_image[-1].prompt_tokens >= without[-1].prompt_tokens + 4
    assert isinstance(with_image[-1], Finished)


@pytest.mark.asyncio
async def test_unreadable_image_fails_that_request_only(engine, tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    events = await collect(engine, ask("Look", images=[path]))
    assert isinstance(events[-1], Failed)
    assert "could not be read" in events[-1].message
    assert isinstance((await collect(engine, ask("Still serving?")))[-1], Finished)


@pytest.mark.asyncio
async def test_cancel_stops_generation_early(engine):
    handle = engine.submit(ask("Go on and on", sampling=Sampling(4000, 0.0, 1.0)))
    events = []
    async for event in handle.events():
        events.append(event)
        if len(events) == 3:
            handle.cancel()
    assert isinstance(events[-1], Finished)
    assert events[-1].reason == "cancelled"
    assert events[-1].completion_tokens < 4000


@pytest.mark.asyncio
async def test_thinking_request_adds_the_instruction(engine):
    plain = await collect(engine, ask("Think about it"))
    thinking = await collect(engine, ask("Think about it", thinking=True))
    instruction_tokens = len(engine.engine.tokenizer(THINKING_INSTRUCTION)["input_ids"])
    assert thinking[-1].prompt_tokens >= plain[-1].prompt_tokens + instruction_tokens - 1


@pytest.mark.asyncio
async def test_queued_requests_are_all_served_in_turn(engine):
    requests = [ask(f"Question {n}") for n in range(4)]
    results = await asyncio.gather(*(collect(engine, r) for r in requests))
    assert all(isinstance(events[-1], Finished) for events in results)


def test_a_model_folder_that_cannot_load_puts_the_worker_in_error(tmp_path, settings):
    folder = tmp_path / "broken-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "no-such-architecture"}))
    config = dataclasses.replace(settings.MEDSERVER, model=str(folder)).engine_config()
    worker = EngineWorker(lambda: load_engine(config), "broken").start()
    assert worker.wait_ready(timeout=60) is False
    assert worker.state.status == "error"
    assert worker.state.reason
    with pytest.raises(EngineUnavailable, match="could not be loaded"):
        worker.submit(ask("hello"), loop=asyncio.new_event_loop())
    worker.stop()


def test_demo_model_loads_through_the_hub_model_code_path(tmp_path):
    engine = load_engine(EngineConfig(model="demo", data_dir=tmp_path))
    assert type(engine.model).__name__ == "Gemma3ForConditionalGeneration"
    assert type(engine.processor).__name__ == "Gemma3Processor"
    assert engine.describe() == {"device": "cpu", "dtype": "float32", "quantization": "none"}


def test_split_trace_of_a_medgemma_style_answer():
    text = "<unused94>thought\nCheck the airway first.<unused95>Secure the airway."
    assert split_trace(text) == ("Check the airway first.", "Secure the airway.")


@pytest.mark.asyncio
async def test_requests_sent_while_the_model_loads_wait_and_are_served(settings):
    """The server is up before the model: health says loading, requests queue."""
    gate = threading.Event()
    config = dataclasses.replace(settings.MEDSERVER, model="demo").engine_config()

    def slow_load():
        gate.wait(30)
        return load_engine(config)

    worker = EngineWorker(slow_load, "demo").start()
    try:
        assert worker.state.status == "loading"
        handle = worker.submit(ask("Asked during loading"))
        assert worker.queue_depth == 1
        gate.set()
        events = [event async for event in handle.events()]
        assert isinstance(events[-1], Finished)
        assert worker.state.status == "ready"
        assert worker.state.ready_at is not None
    finally:
        gate.set()
        worker.stop()


@pytest.mark.asyncio
async def test_a_cut_off_answer_continued_reads_as_if_written_whole(engine):
    question = "Describe a normal chest X-ray."
    whole = await collect(engine, ask(question, sampling=GREEDY))
    half = await collect(engine, ask(question, sampling=Sampling(max_new_tokens=6, temperature=0)))
    assert half[-1].reason == "length"
    first_part = "".join(e.text for e in half if isinstance(e, Delta))
    turns = (ChatTurn("user", question), ChatTurn("assistant", first_part))
    rest = await collect(
        engine,
        GenerationRequest(turns, Sampling(max_new_tokens=6, temperature=0), continue_answer=True),
    )
    assert isinstance(rest[-1], Finished), rest[-1]
    # The model went on from its last word: no end of turn and no new model turn in between.
    assert rest[-1].prompt_tokens == half[-1].prompt_tokens + half[-1].completion_tokens
    text = lambda events: "".join(e.text for e in events if isinstance(e, Delta))  # noqa: E731
    assert first_part + text(rest) == text(whole)


@pytest.mark.asyncio
async def test_continuing_without_an_unfinished_answer_is_refused(engine):
    request = dataclasses.replace(ask("Hello"), continue_answer=True)
    events = await collect(engine, request)
    assert isinstance(events[-1], Failed) and "no unfinished answer" in events[-1].message
