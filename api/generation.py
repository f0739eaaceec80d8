"""Running an API request on the shared engine worker, within the user's limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async

from api.conversation import ChatCall
from api.end_users import EndUser
from api.errors import ApiError
from audit import trail
from chat import limits, serving
from chat.serving import engine_worker
from inference.engine import Delta, Event, Failed, Finished, GenerationRequest
from inference.worker import GenerationHandle

_FAILED_STATUS = {"invalid_request": 400, "unavailable": 503, "engine_error": 500}


@dataclass
class Answer:
    """A whole answer, for requests that do not stream."""

    content: str
    thinking: str
    finished: Finished


@dataclass
class Generation:
    """A request accepted by the engine; its events, first ones included."""

    handle: GenerationHandle
    slot: limits.StreamSlot
    first: list[Event] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)

    async def events(self) -> AsyncIterator[Event]:
        """Yield every event up to Finished; stop the engine if the reader goes away.

        A client that disconnects makes the server cancel this generator: the
        engine is told to stop and the user's stream slot is free at once.
        """
        try:
            pending = self.first
            while True:
                for event in pending:
                    yield event
                    if isinstance(event, Finished | Failed):
                        return
                pending = await self.handle.next_events()
        finally:
            self.close()

    def close(self) -> None:
        """Stop the engine (if still running) and free the stream slot; safe to repeat."""
        self.handle.cancel()
        limits.release_stream(self.slot)

    async def answer(self) -> Answer:
        parts: dict[str, list[str]] = {"thinking": [], "answer": []}
        async for event in self.events():
            if isinstance(event, Delta):
                parts[event.kind].append(event.text)
            elif isinstance(event, Failed):
                raise failure_error(event)
            elif isinstance(event, Finished):
                return Answer("".join(parts["answer"]), "".join(parts["thinking"]), event)
        raise ApiError(500, "The answer ended without a result.")


async def start_generation(request, call: ChatCall) -> Generation:
    """Queue the request on the engine and wait until it starts.

    Raise ApiError 503 while the model is loading or unusable, 429 when the
    user (or the service token) has no free stream, and the engine's own
    refusal (too long a conversation, an unreadable image) before any byte of
    a response is sent. A started answer is recorded in the audit trail with
    its provenance.
    """
    user = request.user
    token = getattr(request, "api_token", None)
    worker = engine_worker()
    status = worker.state.status
    if status == "loading":
        raise ApiError(503, "The model is still loading; try again shortly.", retry_after=10)
    if status != "ready":
        raise ApiError(503, "The model is not available; see /api/health.", retry_after=60)
    # A refusal (LimitExceeded, EngineBusy, EngineUnavailable) is answered by api.auth's
    # api_endpoint, the API's one mapping of errors to responses.
    slot = limits.reserve_stream(user, token)
    job = GenerationRequest(
        call.turns, call.sampling, call.thinking, continue_answer=call.continue_answer
    )
    try:
        handle = worker.submit(job)
    except BaseException:
        limits.release_stream(slot)
        raise
    generation = Generation(handle, slot)
    try:
        generation.first = await handle.next_events()
    except BaseException:
        generation.close()
        raise
    if isinstance(generation.first[0], Failed):
        generation.close()
        raise failure_error(generation.first[0])
    generation.provenance = answer_provenance(worker, token, call.end_user)
    await sync_to_async(_record_answer)(request, generation.provenance, call.end_user)
    return generation


def answer_provenance(worker, token, end_user: EndUser | None) -> dict:
    """What wrote the answer and for whom, returned with it (the page's provenance, for
    the API)."""
    provenance = {
        "model": serving.served_model().api_id,
        "engine": worker.state.engine,
    }
    if token is not None:
        provenance["token"] = {"name": token.name, "service": token.service}
    if end_user is not None:
        provenance["end_user"] = end_user.as_dict()
    return provenance


def _record_answer(request, provenance: dict, end_user: EndUser | None) -> None:
    token = provenance.get("token")
    parts = [f"model {provenance['model']} on {provenance['engine'] or '?'}"]
    if token:
        parts.append(f"{'service' if token['service'] else 'personal'} token {token['name']}")
    if end_user is not None:
        parts.insert(0, f"for {end_user.label()}")
    trail.record(
        trail.Action.API_ANSWER, request=request, target=request.path[:100], detail="; ".join(parts)
    )


def failure_error(failed: Failed) -> ApiError:
    return ApiError(_FAILED_STATUS.get(failed.code, 500), failed.message, code=failed.code)


def usage(finished: Finished) -> dict:
    return {
        "prompt_tokens": finished.prompt_tokens,
        "completion_tokens": finished.completion_tokens,
        "total_tokens": finished.prompt_tokens + finished.completion_tokens,
    }


def timings(finished: Finished) -> dict:
    first = finished.first_token_seconds
    decode = finished.total_seconds - (first or 0)
    return {
        "first_token_ms": None if first is None else round(first * 1000, 1),
        "total_ms": round(finished.total_seconds * 1000, 1),
        "tokens_per_second": round(finished.completion_tokens / decode, 1) if decode > 0 else None,
    }
