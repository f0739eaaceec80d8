"""Concurrent requests on the demo model: served together, each as if alone."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import threading
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
        lambda: load_engine(
            dataclasses.replace(settings.MEDSERVER, model=str(folder)).engine_config()
        ),
        "broken",
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
    config = dataclasses.replace(settings.MEDSERVER, model="demo").engine_config()
    worker = EngineWorker(
        lambda: load_engine(config), "demo", WorkerLimits(max_batch_size=2, max_queued=2)
    ).start()
    try:
        assert worker.wait_ready(60)
        # Two are written together (the batch) and two may wait for a place.
        handles = [worker.submit(ask(p, tokens=500, ignore_eos=True)) for p in PROMPTS[:4]]
        with pytest.raises(EngineBusy, match="busy"):
            worker.submit(ask(PROMPTS[4]))
        for handle in handles:
            handle.cancel()
        for handle in handles:
            async for _ in handle.events():
                pass
    finally:
        worker.stop()


async def test_a_request_takes_the_place_of_the_first_answer_to_end_in_a_full_batch(settings):
    """Head-of-line: with every place taken, a newcomer waits for the first answer
    to end, not for the longest."""
    config = dataclasses.replace(settings.MEDSERVER, model="demo").engine_config()
    worker = EngineWorker(
        lambda: load_engine(config), "demo", WorkerLimits(max_batch_size=2, loop_guard=0)
    ).start()
    try:
        assert worker.wait_ready(60)
        order = []

        async def tracked(name, request, delay=0.0):
            await asyncio.sleep(delay)
            result = await run(worker, request)
            order.append(name)
            return result

        results = await asyncio.gather(
            tracked("long", ask(PROMPTS[0], tokens=600, ignore_eos=True)),
            tracked("short", ask(PROMPTS[1], tokens=5, ignore_eos=True)),
            tracked("newcomer", ask(PROMPTS[2], tokens=5, ignore_eos=True), delay=0.05),
        )
        assert order == ["short", "newcomer", "long"]
        assert all(isinstance(end, Finished) for _, end in results)
    finally:
        worker.stop()


async def test_a_rows_images_go_through_the_vision_tower_once_across_joins(engine, tmp_path):
    path = tmp_path / "scan.png"
    Image.new("RGB", (120, 90), color=(30, 60, 90)).save(path)
    with_image = ask("Describe the image", tokens=80, images=[path, path], ignore_eos=True)
    (alone_text, _) = (await alone(engine, [with_image]))[0]
    model = engine.engine.model
    calls = []
    hook = model.model.vision_tower.register_forward_hook(
        lambda module, args, kwargs, output: calls.append(len(kwargs["pixel_values"])),
        with_kwargs=True,
    )
    try:

        async def late(request, delay):
            await asyncio.sleep(delay)
            return await run(engine, request)

        results = await asyncio.gather(
            run(engine, with_image),
            *(late(ask(prompt, tokens=3), 0.02 * n) for n, prompt in enumerate(PROMPTS[:4], 1)),
        )
    finally:
        hook.remove()
    # Newcomers joined the image row's batch several times; its two images were encoded once.
    assert sum(calls) == 2, calls
    assert results[0][0] == alone_text


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


async def test_requests_are_tokenized_before_they_reach_the_engine_thread(engine, monkeypatch):
    threads = []
    prepare = engine.engine.prepare

    def recording(request):
        threads.append(threading.current_thread().name)
        return prepare(request)

    monkeypatch.setattr(engine.engine, "prepare", recording)
    await together(engine, [ask(prompt, tokens=3) for prompt in PROMPTS[:3]])
    assert threads and all(name.startswith("medserver-prepare") for name in threads), threads


async def test_a_conversation_far_over_the_context_is_refused_before_tokenizing(engine):
    """99 messages of 50,000 characters (within the message limits) cannot fit 8,192
    tokens; the refusal comes from the text's length alone, while a short question
    asked next is answered as usual."""
    turns = []
    for n in range(99):
        turns.append(ChatTurn("user" if n % 2 == 0 else "assistant", "lorem ipsum " * 4_166))
    hostile = GenerationRequest(tuple(turns), Sampling(10, 0.0, 0.95))
    started = time.perf_counter()
    _, end = await run(engine, hostile)
    refused_after = time.perf_counter() - started
    assert isinstance(end, Failed) and end.code == "invalid_request"
    assert "tokens long" in end.message and "8192" in end.message
    print(f"refused after {refused_after * 1000:.0f} ms")
    _, short = await run(engine, ask(PROMPTS[0], tokens=2))
    assert isinstance(short, Finished)
