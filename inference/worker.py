"""The engine worker: one thread that owns the model and serves every request.

The chat's answers (chat/answers/live.py) and the JSON API (api/generation.py)
both call `engine_worker().submit()`. A submitted request is first rendered,
tokenized and checked on one of the worker's preparation threads (so the
thread that generates never tokenizes, and a request that cannot fit is
refused at once), then queued. The engine thread loads the model first
(while /api/health says "loading"), then serves the queued requests together:
a batched engine (Transformers) gets them as rows of one batch, which pauses
between two tokens to let newcomers in and ended rows out; an engine whose
server batches by itself (SGLang, a remote endpoint) gets each request on a
thread of its own, up to its `max_concurrency` at once. The model is never
driven by two `generate` calls at once. Each request's events flow back to
the caller's asyncio loop through its `GenerationHandle`.

The module is long for a reason: the worker's threads (preparation, the engine
thread, a thread per request for a batching server) share one lock, one queue
and one count of the answers in flight, and their invariants (a place is taken
before a request is queued and given back exactly once) read best in one class.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from inference.config import EngineConfig
from inference.engine import (
    Delta,
    Engine,
    EngineError,
    Event,
    Failed,
    Finished,
    GenerationRequest,
    Job,
)
from inference.handle import GenerationHandle, delivery_interval
from inference.registry import model_spec_for
from inference.stops import LoopGuard, StopScanner

log = logging.getLogger(__name__)


class EngineUnavailable(Exception):
    """The worker cannot take requests (the model failed to load, or it stopped)."""


class EngineBusy(EngineUnavailable):
    """Too many requests are waiting already; the caller should try again shortly."""


@dataclass
class WorkerState:
    status: str = "loading"  # loading | ready | error | stopped
    reason: str = ""
    engine: str = ""
    engine_reason: str = ""  # why this engine was chosen
    model: str = ""
    details: dict[str, str] = field(default_factory=dict)
    # What the engine checked at load (a remote server's context, model, images).
    checks: dict[str, str] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)
    ready_at: float | None = None


@dataclass(frozen=True)
class WorkerLimits:
    max_batch_size: int = 8  # requests generated together (a batched engine)
    # Requests waiting for a place beside those being written; more are refused as busy.
    max_queued: int = 64
    loop_guard: int = 10  # see inference.stops.LoopGuard; 0 = off
    preparers: int = 2  # threads that render and tokenize requests before they queue


_STOP = object()
_UNPREPARABLE = object()  # a request whose preparation crashed
_SHUTTING_DOWN = "MedServer is shutting down; the answer was not finished."
_GATHER_SECONDS = 0.005  # requests that arrive together start together


class EngineWorker:
    """Owns one engine on one thread; see the module docstring."""

    def __init__(
        self,
        load: Callable[[], Engine],
        model_label: str,
        limits: WorkerLimits = WorkerLimits(),
        fallback: Callable[[str], Engine] | None = None,
    ) -> None:
        self._load = load
        self._fallback = fallback
        self.limits = limits
        self._pending: deque = deque()
        self._wakeup = threading.Condition()
        self._in_engine = 0  # requests handed to the engine and not finished
        self._preparing = 0  # requests being rendered and tokenized
        self._count_lock = threading.Lock()
        self._thread = self._new_thread()
        self._ready = threading.Event()
        self._pool: ThreadPoolExecutor | None = None
        self._preparers = ThreadPoolExecutor(
            max_workers=limits.preparers, thread_name_prefix="medserver-prepare"
        )
        self.state = WorkerState(model=model_label)
        self.engine: Engine | None = None
        # Read by monitoring (/metrics): counts, and hooks called on the engine
        # thread with (engine name, Finished or Failed) as each answer ends.
        self.fallbacks = 0
        self.thread_restarts = 0
        self.end_hooks: list[Callable[[str, Event], None]] = []

    def _new_thread(self) -> threading.Thread:
        return threading.Thread(target=self._run, name="medserver-engine", daemon=True)

    def start(self) -> EngineWorker:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10) -> None:
        """Finish the batch in hand, fail the queued requests, and end the thread."""
        self._put(_STOP)
        self._thread.join(timeout)
        self._preparers.shutdown(wait=False, cancel_futures=True)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self.engine is not None:
            self.engine.close()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until loading has ended (either way); return True if ready."""
        self._ready.wait(timeout)
        return self.state.status == "ready"

    @property
    def queue_depth(self) -> int:
        """Requests waiting for the engine (not those being generated)."""
        return len(self._pending) + self._preparing

    @property
    def capacity(self) -> int:
        """How many requests the engine writes at once."""
        engine = self.engine
        if engine is None or engine.batched:
            return self.limits.max_batch_size
        return engine.max_concurrency

    @property
    def running(self) -> int:
        """Requests the engine is generating now."""
        return self._in_engine

    def submit(
        self, request: GenerationRequest, loop: asyncio.AbstractEventLoop | None = None
    ) -> GenerationHandle:
        """Queue a request; its events arrive on `loop` (the running loop by default).

        Raise EngineUnavailable when the model failed to load or the worker
        stopped, EngineBusy when too many requests are waiting.
        """
        if self.state.status in ("error", "stopped"):
            raise EngineUnavailable(self._unavailable_message())
        capacity = self.capacity
        if self.queue_depth + self._in_engine >= capacity + self.limits.max_queued:
            raise EngineBusy(
                f"MedServer is busy: {min(self._in_engine, capacity)} answers are being written "
                f"and {self.queue_depth} are waiting. Try again in a moment."
            )
        self._restart_if_dead()
        handle = GenerationHandle(
            request,
            loop or asyncio.get_running_loop(),
            interval=lambda: delivery_interval(max(1, self._in_engine)),
        )
        with self._count_lock:
            self._preparing += 1
        self._preparers.submit(self._prepare, handle)
        return handle

    def _prepare(self, handle: GenerationHandle) -> None:
        """Render, tokenize and check the request on a preparation thread, then
        queue it; one that cannot be served fails here, in milliseconds for a
        conversation far over the context, without reaching the engine thread."""
        try:
            self._ready.wait()
            engine = self.engine
            if engine is not None and not handle.cancelled:
                try:
                    handle.prepared = (engine, engine.prepare(handle.request))
                except EngineError as error:
                    handle.publish(Failed(str(error), code="invalid_request"))
                    return
                except Exception:
                    # Left to the engine thread, which fails it alone with a clear message.
                    log.exception("A request could not be prepared")
                    handle.prepared = (engine, _UNPREPARABLE)
            self._put(handle)
        finally:
            with self._count_lock:
                self._preparing -= 1

    def _put(self, item) -> None:
        with self._wakeup:
            self._pending.append(item)
            self._wakeup.notify()

    def _restart_if_dead(self) -> None:
        """A worker thread that died is replaced; the loaded engine is kept."""
        if self.state.status == "ready" and not self._thread.is_alive():
            log.error("The engine worker thread had stopped; starting a new one")
            self.thread_restarts += 1
            self._ready.set()
            self._thread = self._new_thread()
            self._thread.start()

    def _unavailable_message(self) -> str:
        if self.state.status == "error":
            return f"The model could not be loaded: {self.state.reason}"
        return "The engine has stopped; restart MedServer."

    def _run(self) -> None:
        if not self._ready.is_set():
            self._load_engine()
        try:
            if self.engine is None:
                self._fail_all_until_stopped()
            while self.engine is not None:
                if self.engine.batched:
                    self._serve_batches()
                    break
                if self._serve_threads():
                    break
                self._replace_engine()
        except Exception:
            log.exception("The engine worker thread failed; it restarts with the next request")
            return
        self.state.status = "stopped"
        self._fail_queued(_SHUTTING_DOWN)

    def _load_engine(self) -> None:
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
            self._use(engine)
            self.state.ready_at = time.time()
            log.info(
                "Model ready: %s on the %s engine (%.1f s)",
                self.state.model,
                engine.name,
                self.state.ready_at - self.state.started_at,
            )
        finally:
            self._ready.set()

    def _use(self, engine: Engine) -> None:
        self.engine = engine
        self.state.engine = engine.name
        self.state.engine_reason = engine.choice_reason
        self.state.details = engine.describe()
        self.state.checks = dict(getattr(engine, "checks", {}))
        self.state.status = "ready"

    def _replace_engine(self) -> None:
        """The engine gave up (a crash loop): free it and load the fallback."""
        reason = self.engine.failed_reason or "the engine stopped"
        log.error("The %s engine gave up (%s); loading the fallback", self.engine.name, reason)
        self.engine.close()
        self.engine = None
        self.state.status = "loading"
        self.fallbacks += 1
        try:
            self._use(self._fallback(reason))
        except Exception as error:
            log.exception("The fallback engine could not be loaded")
            self._set_error(f"{reason}, and the fallback failed to load ({error})")

    def _set_error(self, reason: str) -> None:
        self.state.status = "error"
        self.state.reason = reason
        log.error("The model could not be loaded: %s", reason)

    def _take(self, block: bool, limit: int | None = None) -> list:
        """Take up to `limit` waiting items; wait for one first if `block`."""
        limit = self.limits.max_batch_size if limit is None else limit
        with self._wakeup:
            if block:
                while not self._pending:
                    self._wakeup.wait()
                self._wakeup.wait(_GATHER_SECONDS)
            taken = []
            while self._pending and len(taken) < limit:
                taken.append(self._pending.popleft())
            return taken

    def _serve_batches(self) -> None:
        active: list[Job] = []
        while True:
            room = self.limits.max_batch_size - len(active)
            new = self._take(block=not active, limit=room) if room > 0 else []
            if _STOP in new:
                for job in active:
                    self._finish(job, Failed(_SHUTTING_DOWN, code="unavailable"))
                self._fail_handles(new)
                return
            active += [job for handle in new if (job := self._start_job(handle))]
            if not active:
                continue
            solo = [job for job in active if job.solo]
            batch = solo[:1] or active
            active = [job for job in active if job not in batch] + self._run_batch(batch)

    def _run_batch(self, batch: list[Job]) -> list[Job]:
        """Run one batch; on a crash, fail a lone job or retry the jobs one by one."""
        size = len(batch)

        def should_yield(running: int) -> bool:
            # Finished rows leave at the pause, so a newcomer takes the place they free.
            return bool(self._pending) and running < self.limits.max_batch_size

        try:
            unfinished = self.engine.run_batch(batch, should_yield)
        except Exception as error:
            _free_accelerator_memory()
            if size == 1:
                log.exception("Generation failed")
                self._finish(batch[0], Failed(_crash_message(error)))
                return []
            log.exception("A batch of %d failed; retrying its requests one by one", size)
            for job in batch:
                job.solo = True
            return batch
        for job in batch:
            if job not in unfinished:
                self._count(-1)
        return unfinished

    def _serve_threads(self) -> bool:
        """Hand each request to a thread; return True when stopped, False if the
        engine gave up and must be replaced (the waiting requests stay queued)."""
        self._pool = self._pool or ThreadPoolExecutor(
            max_workers=self.engine.max_concurrency, thread_name_prefix="medserver-request"
        )
        while True:
            with self._wakeup:
                while not self._pending:
                    self._wakeup.wait(timeout=1)
                    if self.engine.failed_reason and self._fallback:
                        return False
            if self.engine.failed_reason and self._fallback:
                return False
            taken = self._take(block=False)
            if _STOP in taken:
                self._fail_handles(taken)
                return True
            for handle in taken:
                if job := self._start_job(handle):
                    self._pool.submit(self._run_one, job)

    def _run_one(self, job: Job) -> None:
        try:
            self.engine.run_one(job)
        except EngineError as error:
            job.fail(str(error))
        except Exception as error:
            log.exception("Generation failed")
            job.fail(_crash_message(error), code="engine_error")
        finally:
            self._count(-1)

    def _start_job(self, handle: GenerationHandle) -> Job | None:
        """The request as a job for the engine; a request that cannot be one fails alone."""
        if not self._admit(handle):
            return None
        try:
            return self._job_for(handle)
        except Exception:
            log.exception("A request could not be prepared")
            self._count(-1)
            handle.publish(Failed("This request could not be prepared; the error was logged."))
            return None

    def _admit(self, handle: GenerationHandle) -> bool:
        """Count the request in, unless it was cancelled while it waited."""
        if handle.cancelled:
            handle.publish(Finished("cancelled", 0, 0, None, 0.0))
            return False
        self._count(+1)
        return True

    def _count(self, change: int) -> None:
        with self._count_lock:
            self._in_engine += change

    def _finish(self, job: Job, event: Event) -> None:
        job.emit(event)
        self._count(-1)

    def _job_for(self, handle: GenerationHandle) -> Job:
        """The engine's view of a request, with stop sequences and the loop guard on top.

        It carries what the preparation threads made of it, when the engine
        that prepared it is the one serving now (else the engine prepares it).
        """
        engine, prepared = handle.prepared or (None, None)
        if prepared is _UNPREPARABLE:
            raise RuntimeError("the request could not be prepared")
        sampling = handle.request.sampling
        scanner = StopScanner(sampling.stop) if sampling.stop else None
        guard = LoopGuard(0 if sampling.ignore_eos else self.limits.loop_guard)
        job = Job(
            handle.request,
            _guarded_emit(handle, scanner, guard, self._ended),
            lambda: handle.cancelled or guard.looping or bool(scanner and scanner.stopped),
        )
        if engine is self.engine:
            job.state = prepared
        return job

    def _ended(self, event: Event) -> None:
        for hook in self.end_hooks:
            try:
                hook(self.state.engine, event)
            except Exception:  # monitoring must never break an answer
                log.exception("An end hook failed")

    def _fail_all_until_stopped(self) -> None:
        while True:
            taken = self._take(block=True)
            self._fail_handles(taken, self._unavailable_message())
            if _STOP in taken:
                return

    def _fail_queued(self, message: str) -> None:
        while taken := self._take(block=False):
            self._fail_handles(taken, message)

    @staticmethod
    def _fail_handles(items: list, message: str = "") -> None:
        for item in items:
            if isinstance(item, GenerationHandle):
                item.publish(Failed(message or _SHUTTING_DOWN, code="unavailable"))


def _crash_message(error: Exception) -> str:
    if "out of memory" in str(error).lower():
        return (
            "The GPU ran out of memory for this answer; try a shorter conversation or "
            "fewer images. The error was logged."
        )
    return "The engine failed while generating this answer; the error was logged."


def _free_accelerator_memory() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def _guarded_emit(
    handle: GenerationHandle,
    scanner: StopScanner | None,
    guard: LoopGuard,
    ended: Callable[[Event], None] = lambda event: None,
) -> Callable[[Event], None]:
    """Wrap `handle.publish` so the answer ends at a stop sequence or a loop."""

    def emit(event: Event) -> None:
        if isinstance(event, Delta):
            guard.feed(event.text)
            if scanner is not None and event.kind == "answer":
                event = Delta("answer", scanner.feed(event.text))
            if event.text:
                handle.publish(event)
            return
        if isinstance(event, Finished):
            tail = scanner.flush() if scanner is not None else ""
            if tail:
                handle.publish(Delta("answer", tail))
            if not handle.cancelled:
                if guard.looping:
                    event = dataclasses.replace(event, reason="repetition")
                elif scanner is not None and scanner.stopped:
                    event = dataclasses.replace(event, reason="stop")
        if isinstance(event, Finished | Failed):
            ended(event)
        handle.publish(event)

    return emit


_worker: EngineWorker | None = None
_worker_lock = threading.Lock()


def start_engine_worker(config: EngineConfig) -> EngineWorker:
    """Start the process's engine worker for `config`.

    Calling it again returns the running worker. The heavy imports (torch,
    transformers) happen on the worker thread, so the server listens at once.
    """
    global _worker
    with _worker_lock:
        if _worker is None:

            def load() -> Engine:
                from inference.engine_select import load_engine

                return load_engine(config)

            def fallback(reason: str) -> Engine:
                from inference.engine_select import fallback_engine

                return fallback_engine(config, reason)

            limits = WorkerLimits(
                max_batch_size=config.max_batch_size,
                max_queued=config.max_queued_requests,
                loop_guard=config.loop_guard,
            )
            label = model_spec_for(config.model).label
            _worker = EngineWorker(load, label, limits, fallback).start()
        return _worker


def running_engine_worker() -> EngineWorker | None:
    """The process's engine worker, or None before start_engine_worker."""
    return _worker


def stop_engine_worker() -> None:
    global _worker
    with _worker_lock:
        if _worker is not None:
            _worker.stop()
            _worker = None
