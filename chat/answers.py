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
from chat.limits import StreamSlot, release_stream
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
class _LiveAnswer:
    """An answer being written, with the stream slot it holds."""

    slot: StreamSlot
    owner_id: int
    session_id: object
    handle: GenerationHandle | None = None
    task: asyncio.Task | None = None


# Lives on the server's event loop only, so it needs no lock.
_running: dict[int, _LiveAnswer] = {}  # answer message id -> its live state


def start_answer(answer: Message, slot: StreamSlot) -> None:
    """Start writing `answer` (a saved streaming placeholder) in the background.

    The answer keeps `slot` (from chat.limits.reserve_stream) until it ends.
    """
    live = _LiveAnswer(slot, slot.owner_id, answer.session_id)
    _running[answer.pk] = live
    live.task = asyncio.create_task(_write_answer(answer, live), name=f"answer-{answer.pk}")


def stop_answers(session_id, user) -> int:
    """Ask the engine to stop the user's answers in a session; return how many."""
    stopped = 0
    for live in _running.values():
        if live.owner_id == user.pk and live.session_id == session_id and live.handle:
            live.handle.cancel()
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


async def _write_answer(answer: Message, running: _LiveAnswer) -> None:
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
        release_stream(running.slot)
        await layer.group_send(group, {"type": "answer.done", "message_id": answer.pk})


async def _fail(answer: Message, parts: dict[str, list[str]], error: str) -> None:
    await database_sync_to_async(services.answer_fail)(
        answer.pk,
        content="".join(parts["answer"]),
        thinking="".join(parts["thinking"]),
        error=error,
    )
