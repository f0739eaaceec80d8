"""A request's events on their way from the engine thread to the caller's asyncio loop.

The engine writes a token every millisecond or two on a small model, and a
caller does work for every delivery it reads (renders a frame, writes to a
socket). Taken one by one, that work competes with the engine for the
interpreter and slows every stream. So events are delivered in batches: the
first at once (the time to first token is untouched), the end at once, and
the text in between at most every `DELIVERY_INTERVAL_SECONDS`, which is about
as often as text can usefully appear on a screen. With many streams at once the
interval grows, so that all of them together get about `DELIVERIES_PER_SECOND`
and the callers' work stays bounded however many clinicians are waiting. A
slower model is not held back: each of its tokens arrives after the interval
has passed. Text of one kind delivered together comes as one Delta.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable

from inference.engine import Delta, Event, Failed, Finished, GenerationRequest

DELIVERY_INTERVAL_SECONDS = 0.03  # one stream's deliveries, at least this far apart
DELIVERIES_PER_SECOND = 125  # all streams' together, at most about this many


def delivery_interval(streams: int) -> float:
    """How far apart one stream's deliveries are while `streams` are being written."""
    return max(DELIVERY_INTERVAL_SECONDS, streams / DELIVERIES_PER_SECOND)


class GenerationHandle:
    """The caller's end of one request: its events, and a way to cancel it."""

    def __init__(
        self,
        request: GenerationRequest,
        loop: asyncio.AbstractEventLoop,
        interval: Callable[[], float] | float = DELIVERY_INTERVAL_SECONDS,
    ) -> None:
        """`interval`: seconds between deliveries, or a function that says it now."""
        self.request = request
        # (engine, what engine.prepare made of the request), set by the worker.
        self.prepared: tuple[object, object] | None = None
        self._loop = loop
        self._interval = interval
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._waiting: list[Event] = []  # published, not yet read
        self._signalled = False  # a wake-up for the reader is on its way
        self._arrived = asyncio.Event()  # loop side: something is waiting
        self._ended = asyncio.Event()  # loop side: the last event is waiting
        self._last_delivery = float("-inf")

    def cancel(self) -> None:
        """Ask the engine to stop after the current token; a Finished event still follows."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def publish(self, event: Event) -> None:
        """Called on the worker thread; hands the event to the caller's loop.

        The loop is woken once per delivery, not once per event. If it has
        closed, nobody can read the answer: stop generating it.
        """
        last = isinstance(event, Finished | Failed)
        with self._lock:
            self._waiting.append(event)
            if self._signalled and not last:
                return
            self._signalled = True
        try:
            self._loop.call_soon_threadsafe(self._wake, last)
        except RuntimeError:
            self._cancelled.set()

    def _wake(self, last: bool) -> None:
        self._arrived.set()
        if last:
            self._ended.set()

    async def next_events(self) -> list[Event]:
        """Wait for at least one event; return it with every other one waiting.

        After a delivery, the next waits until the interval has passed, unless
        the answer ends sooner; a slow reader gets one batch for many tokens.
        """
        while True:
            await self._arrived.wait()
            interval = self._interval() if callable(self._interval) else self._interval
            pause = self._last_delivery + interval - self._loop.time()
            if pause > 0 and not self._ended.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._ended.wait(), pause)
            with self._lock:
                events, self._waiting = self._waiting, []
                self._signalled = False
                self._arrived.clear()
            if events:  # a wake-up can trail the events it announced
                self._last_delivery = self._loop.time()
                return _merged(events)

    async def events(self):
        """Yield events until Finished or Failed (inclusive)."""
        while True:
            for event in await self.next_events():
                yield event
                if isinstance(event, Finished | Failed):
                    return


def _merged(events: list[Event]) -> list[Event]:
    """The events with each run of text of one kind joined into one Delta,
    so a reader that writes a frame per event writes one per delivery."""
    merged: list[Event] = []
    for event in events:
        previous = merged[-1] if merged else None
        if isinstance(event, Delta) and isinstance(previous, Delta) and previous.kind == event.kind:
            merged[-1] = Delta(event.kind, previous.text + event.text)
        else:
            merged.append(event)
    return merged
