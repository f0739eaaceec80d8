"""The engine worker: one thread that owns the model and serves every request.

The WebSocket consumer and the JSON API both call `engine_worker().submit()`.
The thread loads the model first (while /api/health says "loading"), then
takes requests from a queue one by one, so the model is never driven from two
threads at once. Each request's events flow back to the caller's asyncio loop
through its `GenerationHandle`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from inference.engine import (
    Delta,
    Engine,
    EngineError,
    Event,
    Failed,
    Finished,
    GenerationRequest,
)
from inference.registry import model_spec_for
from inference.stops import StopScanner

log = logging.getLogger(__name__)


class EngineUnavailable(Exception):
    """The worker cannot take requests (the model failed to load, or it stopped)."""


class GenerationHandle:
    """The caller's end of one request: its events, and a way to cancel it."""

    def __init__(self, request: GenerationRequest, loop: asyncio.AbstractEventLoop) -> None:
        self.request = request
        self._loop = loop
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        """Ask the engine to stop after the current token; a Finished event still follows."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def publish(self, event: Event) -> None:
        """Called on the worker thread; hands the event to the caller's loop.

        If that loop has closed, nobody can read the answer: stop generating it.
        """
        try:
            self._loop.call_soon_threadsafe(self._events.put_nowait, event)
        except RuntimeError:
            self._cancelled.set()

    async def next_events(self) -> list[Event]:
        """Wait for at least one event; return it with any others already waiting.

        Taking everything that is ready lets a slow reader send one frame for
        many tokens instead of falling behind.
        """
        events = [await self._events.get()]
        while not self._events.empty():
            events.append(self._events.get_nowait())
        return events

    async def events(self):
        """Yield events until Finished or Failed (inclusive)."""
        while True:
            for event in await self.next_events():
                yield event
                if isinstance(event, Finished | Failed):
                    return


@dataclass
class WorkerState:
    status: str = "loading"  # loading | ready | error | stopped
    reason: str = ""
    engine: str = ""
    model: str = ""
    details: dict[str, str] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)
    ready_at: float | None = None


_STOP = object()


class EngineWorker:
    """Owns one engine on one thread; see the module docstring."""

    def __init__(self, load: Callable[[], Engine], model_label: str) -> None:
        self._load = load
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="medserver-engine", daemon=True)
        self._ready = threading.Event()
        self.state = WorkerState(model=model_label)
        self.engine: Engine | None = None

    def start(self) -> EngineWorker:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10) -> None:
        """Finish the request in hand, fail the queued ones, and end the thread."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until loading has ended (either way); return True if ready."""
        self._ready.wait(timeout)
        return self.state.status == "ready"

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    def submit(
        self, request: GenerationRequest, loop: asyncio.AbstractEventLoop | None = None
    ) -> GenerationHandle:
        """Queue a request; its events arrive on `loop` (the running loop by default).

        Raise EngineUnavailable when the model failed to load or the worker stopped.
        """
        if self.state.status in ("error", "stopped"):
            raise EngineUnavailable(self._unavailable_message())
        handle = GenerationHandle(request, loop or asyncio.get_running_loop())
        self._queue.put(handle)
        return handle

    def _unavailable_message(self) -> str:
        if self.state.status == "error":
            return f"The model could not be loaded: {self.state.reason}"
        return "The engine has stopped; restart MedServer."

    def _run(self) -> None:
        try:
            engine = self._load()
        except EngineError as error:
            self._set_error(str(error))
        except Exception as error:  # any loader crash must reach /api/health, not kill us
            log.exception("Loading the model failed")
            self._set_error(
                f"loading failed unexpectedly ({type(error).__name__}); "
                "the server log has the details."
            )
        else:
            self.engine = engine
            self.state.engine = engine.name
            self.state.details = engine.describe()
            self.state.ready_at = time.time()
            self.state.status = "ready"
            log.info(
                "Model ready: %s on the %s engine (%.1f s)",
                self.state.model,
                engine.name,
                self.state.ready_at - self.state.started_at,
            )
        finally:
            self._ready.set()
        while True:
            item = self._queue.get()
            if item is _STOP:
                break
            self._serve(item)
        self.state.status = "stopped"
        self._fail_queued("MedServer is shutting down; the answer was not generated.")

    def _set_error(self, reason: str) -> None:
        self.state.status = "error"
        self.state.reason = reason
        log.error("The model could not be loaded: %s", reason)

    def _serve(self, handle: GenerationHandle) -> None:
        if self.engine is None:
            handle.publish(Failed(self._unavailable_message(), code="unavailable"))
            return
        if handle.cancelled:
            handle.publish(Finished("cancelled", 0, 0, None, 0.0))
            return
        emit = handle.publish
        stops = handle.request.sampling.stop
        scanner = StopScanner(stops) if stops else None
        if scanner is not None:
            emit = _stopping_at(scanner, handle)
        try:
            self.engine.generate(
                handle.request, emit, lambda: handle.cancelled or bool(scanner and scanner.stopped)
            )
        except EngineError as error:
            handle.publish(Failed(str(error), code="invalid_request"))
        except Exception:
            # Log the details for the admin; the clinician gets a plain sentence.
            log.exception("Generation failed")
            handle.publish(
                Failed("The engine failed while generating this answer; the error was logged.")
            )

    def _fail_queued(self, message: str) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, GenerationHandle):
                item.publish(Failed(message, code="unavailable"))


def _stopping_at(scanner: StopScanner, handle: GenerationHandle) -> Callable[[Event], None]:
    """Wrap `handle.publish` so the answer ends at the first stop sequence."""

    def emit(event: Event) -> None:
        if isinstance(event, Delta) and event.kind == "answer":
            text = scanner.feed(event.text)
            if text:
                handle.publish(Delta("answer", text))
            return
        if isinstance(event, Finished):
            tail = scanner.flush()
            if tail:
                handle.publish(Delta("answer", tail))
            if scanner.stopped and not handle.cancelled:
                event = dataclasses.replace(event, reason="stop")
        handle.publish(event)

    return emit


_worker: EngineWorker | None = None
_worker_lock = threading.Lock()


def start_engine_worker(config=None) -> EngineWorker:
    """Start the process's engine worker for `config` (settings.MEDSERVER by default).

    Calling it again returns the running worker. The heavy imports (torch,
    transformers) happen on the worker thread, so the server listens at once.
    """
    global _worker
    with _worker_lock:
        if _worker is None:
            if config is None:
                from django.conf import settings

                config = settings.MEDSERVER

            def load() -> Engine:
                from inference.engine_select import load_engine

                return load_engine(config)

            _worker = EngineWorker(load, model_spec_for(config.model).label).start()
        return _worker


def engine_worker() -> EngineWorker:
    """Return the running engine worker, starting it from settings if needed."""
    return _worker or start_engine_worker()


def stop_engine_worker() -> None:
    global _worker
    with _worker_lock:
        if _worker is not None:
            _worker.stop()
            _worker = None
