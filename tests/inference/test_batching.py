"""Concurrent requests on the demo model: served together, each as if alone."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import time

import pytest
from PIL import Image

from inference.demo_model import ensure_demo_model
from inference.engine import ChatTurn, Delta, Failed, Finished, GenerationRequest, Sampling
from inference.engine_select import load_engine
from inference.worker import EngineBusy, EngineWorker, WorkerLimits

pytestmark = pytest.mark.asyncio

PROMPTS = [
    "Signs of pneumothorax on a chest film?",
    "Dose of amoxicillin for otitis media in children",
    "Differential for acute chest pain",
    "What is a normal QT interval?",
    "Explain GERD to a patient",
    "Management of diabetic ketoacidosis",
    "Red flags in low back pain",
    "Interpret a raised troponin",
]


def ask(text: str, tokens: int = 40, *, images=(), temperature=0.0, ignore_eos=False):
    sampling = Sampling(tokens, temperature, 0.95, ignore_eos=ignore_eos)
    return GenerationRequest((ChatTurn("user", text, tuple(images)),), sampling)


async def run(worker: EngineWorker, request: GenerationRequest) -> tuple[str, Finished | Failed]:
    handle = worker.submit(request)
    text = []
    async for event in handle.events():
        if isinstance(event, Delta) and event.kind == "answer":
            text.append(event.text)
        elif isinstance(event, Finished | Failed):
            return "".join(text), event
    raise AssertionError("no end event")


async def alone(worker, requests):
    return [await run(worker, request) for request in requests]


async def together(worker, requests):
    return await asyncio.gather(*(run(worker, request) for request in requests))


async def test_eight_concurrent_greedy_answers_equal_their_answers_alone(engine):
    requests = [ask(prompt) for prompt in PROMPTS]
    started = time.perf_counter()
    one_by_one = await alone(engine, requests)
    sequential = time.perf_counter() - started
    started = time.perf_counter()
    at_once = await together(engine, requests)
    concurrent = time.perf_counter() - started

    assert [text for text, _ in at_once] == [text for text, _ in one_by_one]
    assert all(isinstance(end, Finished) for _, end in at_once)
    assert [end.completion_tokens for _, end in at_once] == [
        end.completion_tokens for _, end in one_by_one
    ]
    print(f"8 greedy requests: one by one {sequential:.2f} s, together {concurrent:.2f} s")
    assert concurrent < sequential  # served together, not queued behind each other


async def test_a_request_joins_a_running_batch_instead_of_waiting(engine):
    long = ask(PROMPTS[0], tokens=300, ignore_eos=True)
    short = ask(PROMPTS[1], tokens=20)
    (long_alone, _), (short_alone, _) = await alone(engine, [long, short])

    order = []

    async def tracked(name, request, delay):
        await asyncio.sleep(delay)
        result = await run(engine, request)
        order.append(name)
        return result

    (long_text, long_end), (short_text, _) = await asyncio.gather(
        tracked("long", long, 0), tracked("short", short, 0.05)
    )
    assert order == ["short", "long"]  # the short answer did not queue behind the long one
    assert long_end.completion_tokens == 300
    assert long_text == long_alone
    assert short_text == short_alone


async def test_sampled_and_greedy_rows_share_a_batch(engine):
    greedy = ask(PROMPTS[2])
    (greedy_alone, _) = (await alone(engine, [greedy]))[0]
    results = await together(engine, [ask(PROMPTS[3], temperature=1.2), greedy])
    assert results[1][0] == greedy_alone
    assert isinstance(results[0][1], Finished)


async def test_image_and_text_requests_share_a_batch(engine, tmp_path):
    path = tmp_path / "scan.png"
    Image.new("RGB", (120, 90), color=(30, 60, 90)).save(path)
    requests = [ask("Describe the image", images=[path]), ask(PROMPTS[4])]
    assert [t for t, _ in await together(engine, requests)] == [
        t for t, _ in await alone(engine, requests)
    ]


async def test_cancelling_one_row_leaves_the_others_running(engine):
    keep = ask(PROMPTS[5], tokens=120, ignore_eos=True)
    (keep_alone, _) = (await alone(engine, [keep]))[0]
    doomed = engine.submit(ask(PROMPTS[6], tokens=2000, ignore_eos=True))
    kept = asyncio.ensure_future(run(engine, keep))
    async for event in doomed.events():
        if isinstance(event, Delta):
            doomed.cancel()
        if isinstance(event, Finished):
            assert event.reason == "cancelled"
            break
    text, end = await kept
    assert text == keep_alone and end.completion_tokens == 120


async def test_a_crash_inside_a_batch_fails_only_the_request_that_causes_it(tmp_path, settings):
    # A model whose vision tower disagrees with its processor: any request with an
    # image raises inside the model's forward pass, text requests are fine.
    folder = tmp_path / "mismatched"
    shutil.copytree(ensure_demo_model(tmp_path / "demo"), folder)
    config = json.loads((folder / "config.json").read_text())
    config["mm_tokens_per_image"] = 16
    (folder / "config.json").write_text(json.dumps(config))
    image = tmp_path / "x.png"
    Image.new("RGB", (60, 60)).save(image)
    worker = EngineWorker(
        lambda: load_engine(dataclasses.replace(settings.MEDSERVER, model=str(folder))), "broken"
    ).start()
    try:
        assert worker.wait_ready(60), worker.state.reason
        text_requests = [ask(prompt, tokens=10) for prompt in PROMPTS[:3]]
        results = await together(worker, [ask("Look", images=[image]), *text_requests])
        assert isinstance(results[0][1], Failed)
        assert "failed while generating" in results[0][1].message
        assert all(isinstance(end, Finished) for _, end in results[1:])
        assert [t for t, _ in results[1:]] == [t for t, _ in await alone(worker, text_requests)]
    finally:
        worker.stop()


async def test_a_full_queue_answers_busy(settings):
    config = dataclasses.replace(settings.MEDSERVER, model="demo")
    worker = EngineWorker(
        lambda: load_engine(config), "demo", WorkerLimits(max_batch_size=2, max_queued=2)
    ).start()
    try:
        assert worker.wait_ready(60)
        first = worker.submit(ask(PROMPTS[0], tokens=500, ignore_eos=True))
        second = worker.submit(ask(PROMPTS[1], tokens=500, ignore_eos=True))
        with pytest.raises(EngineBusy, match="busy"):
            worker.submit(ask(PROMPTS[2]))
        first.cancel()
        second.cancel()
        async for _ in first.events():
            pass
        async for _ in second.events():
            pass
    finally:
        worker.stop()


async def test_a_looping_answer_is_stopped_with_its_reason(engine):
    # Greedy decoding of the random demo model falls into a cycle; the guard notices.
    handle = engine.submit(ask("Go on and on", tokens=3000))
    events = [event async for event in handle.events()]
    end = events[-1]
    assert end.reason == "repetition"
    assert end.completion_tokens < 3000


async def test_a_request_that_cannot_be_prepared_fails_alone(engine):
    broken = GenerationRequest((ChatTurn("user", "x"),), sampling=None)  # no settings at all
    events = [event async for event in engine.submit(broken).events()]
    assert isinstance(events[-1], Failed) and "could not be prepared" in events[-1].message
    text, end = await run(engine, ask(PROMPTS[0], tokens=5))
    assert isinstance(end, Finished)
