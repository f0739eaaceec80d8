"""Writing an answer: from the saved placeholder, through the engine, to the page.

The use cases that start one (ask, edit, regenerate, continue) are in
chat.answers.ask; the request the engine gets is built in chat.answers.prompt.

An answer runs as its own asyncio task, not inside a consumer: it goes on and
is saved when the page that asked for it is closed. Progress is broadcast to
the session's channel-layer group, so every open page of that session follows
it live, and a page that connects mid-answer is sent the text so far
(`live_answers`) before the rest streams in.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import time
from dataclasses import dataclass, field

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from chat import services, stream_html
from chat.answers.prompt import request_for
from chat.limits import StreamSlot, release_stream, reserve_stream
from chat.markdown import MarkdownStream
from chat.models import Message
from chat.serving import engine_worker
from inference.engine import Delta, Failed, Finished
from inference.worker import EngineUnavailable, GenerationHandle

log = logging.getLogger(__name__)

# How often the text streamed so far is written to the database.
PROGRESS_SAVE_SECONDS = 1.0  # at most a second of shown text is lost in a crash


def session_group(session_id) -> str:
    """The channel-layer group of everyone watching one chat session."""
    return f"chat-session-{session_id}"


@dataclass(frozen=True)
class LiveText:
    """What an answer being written has so far; `seq` counts the deltas sent for it."""

    content: str
    thinking: str
    seq: int
    thinking_ms: int | None


@dataclass(eq=False)
class _LiveAnswer:
    """An answer being written: the stream slot it holds and its text so far."""

    slot: StreamSlot
    owner_id: int
    session_id: object
    handle: GenerationHandle | None = None
    task: asyncio.Task | None = None
    text: dict[str, MarkdownStream] = field(
        default_factory=lambda: {"thinking": MarkdownStream(), "answer": MarkdownStream()}
    )
    seq: int = 0
    thinking_started: float | None = None
    thinking_ms: int | None = None

    def snapshot(self) -> LiveText:
        return LiveText(
            self.text["answer"].text, self.text["thinking"].text, self.seq, self.thinking_ms
        )


# Lives on the server's event loop only, so it needs no lock.
_running: dict[int, _LiveAnswer] = {}  # answer message id -> its live state
_NOT_RENDERED = object()  # an answer's final HTML, before it is rendered


async def begin_answer(user, session_id, save) -> str:
    """Reserve one of the user's streams, run `save`, start writing the answer and
    show every page of the session the HTML `save` renders. Return that HTML.

    `save` (sync) saves the answer's streaming placeholder and returns it with
    a function that renders what the pages must show. Both run in one database
    hop, and the engine is given the request between them: it writes the
    first tokens while the pages are being told.

    Raise LimitExceeded or Rejected with nothing saved or started.
    """
    slot = reserve_stream(user)
    saving = asyncio.ensure_future(
        database_sync_to_async(_save_and_submit)(save, asyncio.get_running_loop())
    )
    try:
        answer, started, html = await asyncio.shield(saving)
    except asyncio.CancelledError:
        # The page or request went away meanwhile: the answer is written all the same.
        saving.add_done_callback(functools.partial(_start_when_saved, slot=slot))
        raise
    except BaseException:
        release_stream(slot)
        raise
    await get_channel_layer().group_send(
        session_group(session_id), {"type": "chat.html", "html": html}
    )
    _write_in_background(answer, slot, started)
    return html


def _start_when_saved(saving: asyncio.Future, *, slot: StreamSlot) -> None:
    if saving.cancelled() or saving.exception() is not None:
        release_stream(slot)
    else:
        answer, started, _ = saving.result()
        _write_in_background(answer, slot, started)


def _save_and_submit(save, loop) -> tuple[Message, GenerationHandle | Exception, str]:
    """Run `save`, submit the answer's request to the engine, render the pages' HTML.

    A request that cannot be submitted is returned as its exception: the
    answer is saved and shown by then, and fails with the reason.
    """
    answer, render = save()
    started: GenerationHandle | Exception
    try:
        request = request_for(answer)
        services.answer_record_request(answer, request)  # the provenance is what is asked
        started = engine_worker().submit(request, loop)
    except Exception as error:
        started = error
    try:
        return answer, started, render()
    except BaseException:
        if isinstance(started, GenerationHandle):
            started.cancel()
        raise


def _write_in_background(
    answer: Message, slot: StreamSlot, started: GenerationHandle | Exception
) -> None:
    """Write `answer` (a saved streaming placeholder) in the background, from the
    engine's `started` handle, or fail it with `started`'s reason.

    The answer keeps `slot` (from chat.limits.reserve_stream) until it ends.
    """
    live = _LiveAnswer(slot, slot.owner_id, answer.session_id)
    # A continued answer goes on from its text so far (chat.services.answer_continue).
    live.text["answer"].feed(answer.content)
    live.text["thinking"].feed(answer.thinking)
    live.thinking_ms = answer.thinking_ms
    if isinstance(started, GenerationHandle):
        live.handle = started
    _running[answer.pk] = live
    # A context of its own: the answer outlives the request or socket that asked
    # for it, and must not run its database work in their (ending) thread context.
    live.task = contextvars.Context().run(
        asyncio.create_task, _write_answer(answer, live, started), name=f"answer-{answer.pk}"
    )


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


def live_answers(session_id) -> dict[int, LiveText]:
    """The answers of a session being written now, with their text so far."""
    return {
        message_id: live.snapshot()
        for message_id, live in _running.items()
        if live.session_id == session_id
    }


async def _write_answer(
    answer: Message, live: _LiveAnswer, started: GenerationHandle | Exception
) -> None:
    layer = get_channel_layer()
    group = session_group(answer.session_id)

    async def fail(error: str) -> str | None:
        _stop_thinking_clock(live)
        return await database_sync_to_async(_save_and_render)(
            services.answer_fail,
            answer.pk,
            **_texts(live),
            error=error,
            thinking_ms=live.thinking_ms,
        )

    final = _NOT_RENDERED  # the finished message's HTML, rendered where its end is saved
    try:
        if isinstance(started, Exception):
            raise started
        worker = engine_worker()
        last_save = time.monotonic()
        end = None
        while end is None:
            deltas = []
            for event in await started.next_events():
                if isinstance(event, Delta):
                    deltas.append(event)
                elif isinstance(event, Finished | Failed):
                    end = event
            if deltas:
                html = _advance(answer.pk, live, deltas)
                await layer.group_send(
                    group,
                    {
                        "type": "answer.delta",
                        "message_id": answer.pk,
                        "seq": live.seq,
                        "html": html,
                    },
                )
            if end is None and time.monotonic() - last_save > PROGRESS_SAVE_SECONDS:
                last_save = time.monotonic()
                await database_sync_to_async(services.answer_save_progress)(
                    answer.pk, **_texts(live), thinking_ms=live.thinking_ms
                )
        if isinstance(end, Finished):
            _stop_thinking_clock(live)
            final = await database_sync_to_async(_save_and_render)(
                services.answer_finish,
                answer.pk,
                **_texts(live),
                finished=end,
                engine=worker.state.engine,
                quantization=worker.state.details.get("quantization", ""),
                thinking_ms=live.thinking_ms,
            )
        else:
            final = await fail(end.message)
    except EngineUnavailable as error:
        final = await fail(str(error))
    except asyncio.CancelledError:
        # The server is shutting down: stop the engine and keep what was written.
        if live.handle is not None:
            live.handle.cancel()
        final = await fail(services.INTERRUPTED)
        raise
    except Exception:
        log.exception("Writing answer %s failed", answer.pk)
        final = await fail("Something went wrong while writing this answer.")
    finally:
        _running.pop(answer.pk, None)
        release_stream(live.slot)
        if final is _NOT_RENDERED:  # saving the end failed: show the message as it is
            final = await database_sync_to_async(_final_html)(answer.pk)
        await layer.group_send(
            group, {"type": "answer.done", "message_id": answer.pk, "html": final}
        )


def _save_and_render(save, message_id: int, **fields) -> str | None:
    """Save how an answer ended with `save` (a service), and return the finished
    message's HTML as saved: one database hop at the end of every answer."""
    save(message_id, **fields)
    return _final_html(message_id)


def _final_html(message_id: int) -> str | None:
    """The finished message, to show every page in place of the streaming one."""
    try:
        return stream_html.message_final(message_id)
    except Exception:  # the answer is saved; a page shows it on its next load
        log.exception("Showing the finished answer %s failed", message_id)
        return None


def _advance(message_id: int, live: _LiveAnswer, deltas: list[Delta]) -> str:
    """Take in new text, in the order written; return the frame that shows it
    (rendered once, for every page)."""
    batch = {"thinking": "", "answer": ""}
    thinking_done = False
    for delta in deltas:
        if delta.kind == "thinking" and live.thinking_started is None:
            live.thinking_started = time.monotonic()
        elif delta.kind == "answer" and live.thinking_started and live.thinking_ms is None:
            thinking_done = True  # the answer begins after the trace
            _stop_thinking_clock(live)
        batch[delta.kind] += delta.text
    closed = {kind: live.text[kind].feed(batch[kind]) for kind in ("thinking", "answer")}
    live.seq += 1
    return stream_html.answer_delta(
        message_id,
        thinking_closed=closed["thinking"],
        thinking_tail=live.text["thinking"].tail if batch["thinking"] else None,
        answer_closed=closed["answer"],
        answer_tail=live.text["answer"].tail if batch["answer"] else None,
        thought=(live.text["thinking"].text, live.thinking_ms) if thinking_done else None,
    )


def _stop_thinking_clock(live: _LiveAnswer) -> None:
    if live.thinking_started is not None and live.thinking_ms is None:
        live.thinking_ms = round((time.monotonic() - live.thinking_started) * 1000)


def _texts(live: _LiveAnswer) -> dict[str, str]:
    return {"content": live.text["answer"].text, "thinking": live.text["thinking"].text}
