"""The one interface every engine offers, and the values that cross it.

An engine turns a conversation into a stream of events. It runs on the engine
worker's thread only, so it needs no locking of its own; the worker hands it a
`GenerationRequest`, an `emit` callback for the events and a `should_stop`
callable it polls between tokens.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

# An image is a file on disk or the bytes of a PNG/JPEG/WebP file.
ImageSource = Path | bytes


@dataclass(frozen=True)
class ChatTurn:
    """One turn of a conversation as the model sees it."""

    role: Literal["system", "user", "assistant"]
    text: str
    images: tuple[ImageSource, ...] = ()
    # What each image is ("CT slice 12 of 120"), given to the model as text right
    # after it; "" (or a missing entry) for an image that has no label.
    image_labels: tuple[str, ...] = ()


# MedGemma's own generation_config.json samples from the 64 likeliest tokens.
# Every engine is given it explicitly (SGLang would apply the model's value,
# Transformers none), so that the engines sample alike.
DEFAULT_TOP_K = 64


@dataclass(frozen=True)
class Sampling:
    max_new_tokens: int = 1024
    temperature: float = 0.3
    top_p: float = 0.95
    top_k: int = DEFAULT_TOP_K  # 0 = no limit
    stop: tuple[str, ...] = ()  # the answer ends before the first of these
    # Write all max_new_tokens even past end-of-turn (as vLLM's and SGLang's
    # ignore_eos): for benchmarks and load tests that need a fixed length.
    ignore_eos: bool = False


@dataclass(frozen=True)
class GenerationRequest:
    turns: tuple[ChatTurn, ...]
    sampling: Sampling = field(default_factory=Sampling)
    thinking: bool = False
    # The last turn is the assistant's unfinished answer (cut off at its token
    # budget): the model goes on from its last word instead of starting a new turn.
    continue_answer: bool = False


@dataclass(frozen=True)
class Delta:
    """New text: part of the thinking trace or of the answer."""

    kind: Literal["thinking", "answer"]
    text: str


@dataclass(frozen=True)
class Finished:
    """The end of a generation that produced a (possibly empty) answer."""

    reason: Literal["stop", "length", "cancelled", "repetition"]
    prompt_tokens: int
    completion_tokens: int
    first_token_seconds: float | None
    total_seconds: float


@dataclass(frozen=True)
class Failed:
    """A generation that could not run; `message` is fit to show a clinician.

    `code` says whose problem it is: "invalid_request" (the request cannot be
    served as it is), "unavailable" (no model to serve it), "engine_error"
    (the engine broke; the server log has the details).
    """

    message: str
    code: Literal["invalid_request", "unavailable", "engine_error"] = "engine_error"


Event = Delta | Finished | Failed


class EngineError(Exception):
    """A request the engine refuses; its text is fit to show a clinician."""


class Job:
    """One request inside an engine: what to write, where its events go, when to stop.

    `state` is the engine's own progress on the job (tokens so far, decoder
    state), kept when a batch is paused to let new requests in.
    """

    def __init__(
        self,
        request: GenerationRequest,
        emit: Callable[[Event], None],
        should_stop: Callable[[], bool],
    ) -> None:
        self.request = request
        self.emit = emit
        self.should_stop = should_stop
        self.started = time.perf_counter()
        self.state: object = None
        self.solo = False  # run alone: set after a batch it was in failed

    def fail(self, message: str, code: str = "invalid_request") -> None:
        self.emit(Failed(message, code=code))


class Engine(ABC):
    """A loaded model that can stream answers.

    A `batched` engine is handed many jobs at once on the worker's thread
    (`run_batch`); any other engine gets one job per thread (`run_one`), for
    engines whose server does the batching (SGLang, a remote endpoint).
    """

    name: str
    batched = False
    choice_reason = ""  # why this engine serves (set when it is chosen)
    failed_reason: str | None = None  # set when the engine gave up and must be replaced
    # Requests an unbatched engine runs at once (its server batches them).
    max_concurrency = 8

    @abstractmethod
    def load(self) -> None:
        """Load the model; raise EngineError (or any error) if it cannot."""

    def prepare(self, request: GenerationRequest) -> object:
        """Return the request as the engine will run it (prompt rendered and
        tokenized, images preprocessed), checked against the model's limits.

        Called on the worker's preparation threads, several at once, before
        the request is queued: the thread that generates never tokenizes.
        Raise EngineError when the request cannot be served as it is. The
        result becomes the job's `state`.
        """
        return None

    def run_batch(self, jobs: list[Job], should_yield: Callable[[int], bool]) -> list[Job]:
        """Advance `jobs` together; each that ends emits Finished or Failed.

        Return the jobs not finished yet: the batch paused because
        `should_yield(running)` (called with the number of rows still being
        written) asked for room for new requests. An exception means the
        whole batch broke; the worker then retries its jobs one by one.
        """
        raise NotImplementedError

    def run_one(self, job: Job) -> None:
        """Write one job's answer, ending with Finished or Failed (any thread)."""
        raise NotImplementedError

    def describe(self) -> dict[str, str]:
        """Facts for /api/health: device, dtype, quantization."""
        return {}

    def close(self) -> None:  # noqa: B027 - optional: most engines hold nothing to free
        """Free what the engine holds (GPU memory, a child process)."""
