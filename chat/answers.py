"""Writing an answer: from the saved placeholder, through the engine, to the page.

An answer runs as its own asyncio task, not inside a consumer: it goes on and
is saved when the page that asked for it is closed. Progress is broadcast to
the session's channel-layer group, so every open page of that session (and a
page reopened later) follows it live.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from chat import selectors, services
from chat.errors import LimitExceeded
from chat.models import Message
from inference.engine import Delta, Failed, Finished, GenerationRequest, Sampling
from inference.registry import model_spec_for
from inference.worker import EngineUnavailable, GenerationHandle, engine_worker

log = logging.getLogger(__name__)

# How often the text streamed so far is written to the database.
PROGRESS_SAVE_SECONDS = 2.0


def session_group(session_id) -> str:
    """The channel-layer group of everyone watching one chat session."""
    return f"chat-session-{session_id}"


@dataclass(eq=False)
class StreamSlot:
    """One of a user's concurrent answers: reserved first, then running."""

    owner_id: int
    session_id: object = None
    handle: GenerationHandle | None = None
    task: asyncio.Task | None = None


# Both live on the server's event loop only, so they need no lock.
_reserved: set[StreamSlot] = set()
_running: dict[int, StreamSlot] = {}  # answer message id -> its slot


def reserve_slot(user) -> StreamSlot:
    """Claim one of the user's concurrent answers; raise LimitExceeded if none is free.

    Reserve before saving anything, so a refused request leaves no trace.
    """
    limit = settings.MEDSERVER.max_user_streams
    busy = sum(1 for slot in [*_running.values(), *_reserved] if slot.owner_id == user.pk)
    if busy >= limit:
        plural = "answer" if limit == 1 else "answers"
        raise LimitExceeded(
            f"You already have {busy} {plural} being written (the limit is {limit}); "
            "wait for it to finish or stop it."
        )
    slot = StreamSlot(user.pk)
    _reserved.add(slot)
    return slot


def release_slot(slot: StreamSlot) -> None:
    _reserved.discard(slot)


def start_answer(answer: Message, slot: StreamSlot) -> None:
    """Start writing `answer` (a saved streaming placeholder) in the background."""
    release_slot(slot)
    slot.session_id = answer.session_id
    _running[answer.pk] = slot
    slot.task = asyncio.create_task(_write_answer(answer, slot), name=f"answer-{answer.pk}")


def stop_answers(session_id, user) -> int:
    """Ask the engine to stop the user's answers in a session; return how many."""
    stopped = 0
    for slot in _running.values():
        if slot.owner_id == user.pk and slot.session_id == session_id and slot.handle:
            slot.handle.cancel()
            stopped += 1
    return stopped


def is_running(message_id: int) -> bool:
    return message_id in _running


def _request_for(answer: Message) -> GenerationRequest:
    config = settings.MEDSERVER
    spec = model_spec_for(config.model)
    return GenerationRequest(
        turns=selectors.conversation_before(answer),
        sampling=Sampling(
            max_new_tokens=config.max_new_tokens or spec.answer_tokens,
            temperature=config.default_temperature,
            top_p=config.default_top_p,
        ),
        thinking=answer.session.thinking and spec.can_think,
    )


async def _write_answer(answer: Message, running: StreamSlot) -> None:
    layer = get_channel_layer()
    group = session_group(answer.session_id)
    parts: dict[str, list[str]] = {"thinking": [], "answer": []}

    def text(kind: str) -> str:
        return "".join(parts[kind])

    try:
        request = await database_sync_to_async(_request_for)(answer)
        worker = engine_worker()
        running.handle = worker.submit(request)
        last_save = time.monotonic()
        done = False
        while not done:
            batch = {"thinking": "", "answer": ""}
            for event in await running.handle.next_events():
                if isinstance(event, Delta):
                    parts[event.kind].append(event.text)
                    batch[event.kind] += event.text
                elif isinstance(event, Finished):
                    await database_sync_to_async(services.answer_finish)(
                        answer.pk,
                        content=text("answer"),
                        thinking=text("thinking"),
                        finished=event,
                        engine=worker.state.engine,
                    )
                    done = True
                elif isinstance(event, Failed):
                    await _fail(answer, parts, event.message)
                    done = True
            if batch["thinking"] or batch["answer"]:
                await layer.group_send(
                    group, {"type": "answer.delta", "message_id": answer.pk, **batch}
                )
            if not done and time.monotonic() - last_save > PROGRESS_SAVE_SECONDS:
                last_save = time.monotonic()
                await database_sync_to_async(services.answer_save_progress)(
                    answer.pk, content=text("answer"), thinking=text("thinking")
                )
    except EngineUnavailable as error:
        await _fail(answer, parts, str(error))
    except asyncio.CancelledError:
        # The server is shutting down: stop the engine and keep what was written.
        if running.handle is not None:
            running.handle.cancel()
        await _fail(answer, parts, services.INTERRUPTED)
        raise
    except Exception:
        log.exception("Writing answer %s failed", answer.pk)
        await _fail(answer, parts, "Something went wrong while writing this answer.")
    finally:
        _running.pop(answer.pk, None)
        await layer.group_send(group, {"type": "answer.done", "message_id": answer.pk})


async def _fail(answer: Message, parts: dict[str, list[str]], error: str) -> None:
    await database_sync_to_async(services.answer_fail)(
        answer.pk,
        content="".join(parts["answer"]),
        thinking="".join(parts["thinking"]),
        error=error,
    )
