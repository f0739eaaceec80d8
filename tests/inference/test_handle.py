"""Events from the engine thread reach the caller in order, batched, first and last at once."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from inference.engine import ChatTurn, Delta, Finished, GenerationRequest
from inference.handle import (
    DELIVERIES_PER_SECOND,
    DELIVERY_INTERVAL_SECONDS,
    GenerationHandle,
    delivery_interval,
)

REQUEST = GenerationRequest((ChatTurn("user", "x"),))


def finished() -> Finished:
    return Finished("length", 1, 1, 0.0, 0.0)


async def test_the_first_event_arrives_at_once_and_the_rest_together_after_the_interval():
    handle = GenerationHandle(REQUEST, asyncio.get_running_loop(), interval=0.2)
    handle.publish(Delta("answer", "a"))
    started = time.monotonic()
    assert await handle.next_events() == [Delta("answer", "a")]
    for text in "bcd":
        handle.publish(Delta("answer", text))
    assert await handle.next_events() == [Delta("answer", "bcd")]
    assert time.monotonic() - started >= 0.19


async def test_text_delivered_together_comes_as_one_delta_per_run_of_a_kind():
    handle = GenerationHandle(REQUEST, asyncio.get_running_loop(), interval=0)
    for kind, text in [("thinking", "a"), ("thinking", "b"), ("answer", "c"), ("answer", "d")]:
        handle.publish(Delta(kind, text))
    handle.publish(finished())
    events = await handle.next_events()
    assert events[:2] == [Delta("thinking", "ab"), Delta("answer", "cd")]
    assert isinstance(events[2], Finished)


async def test_the_end_is_not_held_back_by_the_interval():
    handle = GenerationHandle(REQUEST, asyncio.get_running_loop(), interval=5)
    handle.publish(Delta("answer", "a"))
    await handle.next_events()
    handle.publish(Delta("answer", "b"))
    handle.publish(finished())
    started = time.monotonic()
    assert [type(e) for e in await handle.next_events()] == [Delta, Finished]
    assert time.monotonic() - started < 1


async def test_text_from_another_thread_arrives_in_order_and_none_is_lost():
    handle = GenerationHandle(REQUEST, asyncio.get_running_loop(), interval=0.001)

    def engine() -> None:
        for number in range(5000):
            handle.publish(Delta("answer", f"{number} "))
        handle.publish(finished())

    threading.Thread(target=engine).start()
    events = [event async for event in handle.events()]
    assert "".join(event.text for event in events[:-1]) == "".join(f"{n} " for n in range(5000))
    assert isinstance(events[-1], Finished)


async def test_a_closed_loop_cancels_the_request():
    loop = asyncio.new_event_loop()
    handle = GenerationHandle(REQUEST, loop)
    loop.close()
    handle.publish(Delta("answer", "a"))
    assert handle.cancelled


def test_many_streams_share_a_bounded_number_of_deliveries():
    assert delivery_interval(1) == delivery_interval(2) == DELIVERY_INTERVAL_SECONDS
    assert delivery_interval(16) * DELIVERIES_PER_SECOND == pytest.approx(16)
    assert delivery_interval(8) < delivery_interval(16)


async def test_the_interval_is_asked_for_at_each_delivery():
    intervals = iter([0.0, 0.0, 0.3])  # one per delivery
    handle = GenerationHandle(REQUEST, asyncio.get_running_loop(), interval=lambda: next(intervals))
    handle.publish(Delta("answer", "a"))
    await handle.next_events()
    handle.publish(Delta("answer", "b"))
    await handle.next_events()  # waited 0.0 s
    handle.publish(Delta("answer", "c"))
    started = time.monotonic()
    await handle.next_events()  # waited 0.3 s
    assert time.monotonic() - started >= 0.29
