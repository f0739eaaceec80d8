"""The chat WebSocket, driven through Channels' WebsocketCommunicator.

Answers come from the real engine worker running the demo model; what a test
checks is what a browser would receive and what the database keeps.
"""

from __future__ import annotations

import asyncio
import dataclasses
import html
import re
import time

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.models import AnonymousUser

from chat import answers, limits, selectors, services
from chat.answers import live as live_answers
from chat.markdown import render_markdown
from chat.models import Message
from inference.engine import Delta
from tests.support.sockets import (
    DELTA,
    connect,
    messages_of,
    open_socket,
    read_until_final,
    streamed_text,
    visible_text,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def test_answer_streams_from_demo_model_and_is_saved(chat_session, user):
    communicator = await connect(chat_session, user)
    await communicator.send_json_to({"action": "send", "content": "What is GERD?"})

    frames, message_id, status = await read_until_final(communicator)

    assert status == "complete"
    assert any('data-message-role="user"' in frame for frame in frames)
    question, answer = await messages_of(chat_session)
    assert (question.role, question.content) == ("user", "What is GERD?")
    assert str(answer.pk) == message_id
    assert answer.status == Message.Status.COMPLETE
    assert answer.completion_tokens and answer.completion_tokens > 0
    assert answer.engine == "transformers"
    # What streamed to the page is what was saved, as the reloaded page renders it.
    assert streamed_text(frames) == visible_text(render_markdown(answer.content))
    await communicator.disconnect()


async def test_second_turn_carries_the_history(chat_session, user):
    communicator = await connect(chat_session, user)
    for text in ("First question", "And a follow-up"):
        await communicator.send_json_to({"action": "send", "content": text})
        _, _, status = await read_until_final(communicator)
        assert status == "complete"
    messages = await messages_of(chat_session)
    assert [m.role for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[3].prompt_tokens > messages[1].prompt_tokens
    await communicator.disconnect()


async def test_anonymous_socket_is_closed(chat_session):
    _, connected, code = await open_socket(chat_session, AnonymousUser())
    assert not connected
    assert code == 4401


async def test_socket_to_another_users_session_is_refused(chat_session, other_user):
    _, connected, code = await open_socket(chat_session, other_user)
    assert not connected
    assert code == 4404


async def test_socket_from_a_foreign_origin_is_refused(chat_session, user):
    _, connected, _ = await open_socket(chat_session, user, origin=b"http://evil.example")
    assert not connected


async def test_too_long_message_is_refused_with_a_message_and_nothing_saved(
    chat_session, user, medserver_settings
):
    medserver_settings(max_text_length=20)
    communicator = await connect(chat_session, user)
    await communicator.send_json_to({"action": "send", "content": "x" * 21})
    frame = await communicator.receive_from(timeout=10)
    assert 'id="composer-alert"' in frame
    assert "21 characters" in frame and "limit is 20" in frame
    assert await messages_of(chat_session) == []
    await communicator.disconnect()


async def test_malformed_frames_get_a_clear_answer(chat_session, user):
    communicator = await connect(chat_session, user)
    await communicator.send_to(text_data="{not json")
    assert "not understood" in await communicator.receive_from(timeout=10)
    await communicator.send_json_to({"action": "send", "content": ["a", "list"]})
    assert "not understood" in await communicator.receive_from(timeout=10)
    await communicator.send_json_to({"action": "dance"})
    assert "not understood" in await communicator.receive_from(timeout=10)
    assert await messages_of(chat_session) == []
    await communicator.disconnect()


async def test_conversation_longer_than_the_context_fails_clearly(chat_session, user):
    communicator = await connect(chat_session, user)
    # Each "€" is three byte-fallback tokens: far past the 8192-token context.
    await communicator.send_json_to({"action": "send", "content": "€" * 9000})
    frames, _, status = await read_until_final(communicator)
    assert status == "error"
    _, answer = await messages_of(chat_session)
    assert "context holds 8192" in answer.error
    assert "context holds 8192" in html.unescape(frames[-1])
    await communicator.disconnect()


async def test_an_answer_the_engine_cannot_take_is_shown_then_fails_with_the_reason(
    chat_session, user, engine, monkeypatch
):
    # No place free and none to wait in: the engine refuses it as busy.
    monkeypatch.setattr(
        engine, "limits", dataclasses.replace(engine.limits, max_queued=0, max_batch_size=0)
    )
    communicator = await connect(chat_session, user)
    await communicator.send_json_to({"action": "send", "content": "Anyone there?"})
    frames, _, status = await read_until_final(communicator)
    assert any('data-status="streaming"' in frame for frame in frames[:-1])
    assert status == "error"
    _, answer = await messages_of(chat_session)
    assert "MedServer is busy" in answer.error
    assert "MedServer is busy" in html.unescape(frames[-1])
    assert not answers.is_running(answer.pk)
    await communicator.disconnect()


async def test_the_final_frame_is_the_saved_answer_as_the_page_shows_it(
    chat_session, user, async_client
):
    communicator = await connect(chat_session, user)
    await communicator.send_json_to({"action": "send", "content": "**Bold** question"})
    frames, message_id, _ = await read_until_final(communicator)
    await communicator.disconnect()

    await async_client.aforce_login(user)
    page = (await async_client.get(f"/chat/{chat_session.pk}/")).content.decode()
    on_page = re.search(rf'<article [^>]*id="message-{message_id}".*?</article>', page, re.S)
    final = frames[-1].strip().replace(' hx-swap-oob="true"', "")
    assert final == on_page.group(0)


async def test_frames_reach_the_page_while_the_database_thread_is_busy(chat_session, user):
    """An answer's frames do not queue behind database work (Channels would close
    stale connections on that thread before every event)."""
    communicator = await connect(chat_session, user)
    busy = asyncio.ensure_future(database_sync_to_async(time.sleep)(2))
    await asyncio.sleep(0.1)
    group = answers.session_group(chat_session.pk)
    await get_channel_layer().group_send(group, {"type": "chat.html", "html": "<p>now</p>"})
    assert await communicator.receive_from(timeout=1) == "<p>now</p>"
    await busy
    await communicator.disconnect()


async def test_answer_goes_on_and_is_saved_when_the_page_disconnects(chat_session, user):
    communicator = await connect(chat_session, user)
    await communicator.send_json_to({"action": "send", "content": "Closing the tab now"})
    await communicator.receive_from(timeout=10)  # the composer reset
    await communicator.disconnect()

    for _ in range(300):
        messages = await messages_of(chat_session)
        if len(messages) == 2 and messages[1].status != Message.Status.STREAMING:
            break
        await asyncio.sleep(0.1)
    assert messages[1].status == Message.Status.COMPLETE
    assert messages[1].completion_tokens > 0


async def test_every_open_page_of_the_session_follows_the_answer(chat_session, user):
    sender = await connect(chat_session, user)
    watcher = await connect(chat_session, user)
    await sender.send_json_to({"action": "send", "content": "Seen on two screens"})
    sent_frames, sent_id, _ = await read_until_final(sender)
    seen_frames, seen_id, _ = await read_until_final(watcher)
    assert sent_id == seen_id
    assert streamed_text(seen_frames) == streamed_text(sent_frames)
    await sender.disconnect()
    await watcher.disconnect()


async def test_stop_ends_the_answer_and_keeps_it_as_stopped(chat_session, user, medserver_settings):
    medserver_settings(max_new_tokens=4000)
    communicator = await connect(chat_session, user)
    await communicator.send_json_to({"action": "send", "content": "Write at length"})
    while True:  # wait until the answer is really streaming
        frame = await communicator.receive_from(timeout=30)
        if DELTA.search(frame):
            break
    await communicator.send_json_to({"action": "stop"})
    _, _, status = await read_until_final(communicator)
    assert status == "stopped"
    _, answer = await messages_of(chat_session)
    assert answer.status == Message.Status.STOPPED
    assert 0 < answer.completion_tokens < 4000
    await communicator.disconnect()


async def test_a_second_answer_beyond_the_users_stream_limit_is_refused(
    chat_session, user, engine, medserver_settings
):
    medserver_settings(max_new_tokens=4000, max_user_streams=1)
    other_session = await database_sync_to_async(services.session_create)(
        owner=user, model_name=engine.state.model
    )
    first = await connect(chat_session, user)
    second = await connect(other_session, user)
    await first.send_json_to({"action": "send", "content": "A long answer please"})
    await first.receive_from(timeout=10)
    await second.send_json_to({"action": "send", "content": "And another at once"})
    frame = await second.receive_from(timeout=10)
    assert "the limit is 1" in frame
    assert await messages_of(other_session) == []
    await first.send_json_to({"action": "stop"})
    await read_until_final(first)
    await first.disconnect()
    await second.disconnect()


# --- picking up an answer on (re)connect

SNAPSHOT = re.compile(r'<div class="md-part" id="answer-(\d+)-(closed|tail)">(.*?)</div>', re.S)


def page_after(frames: list[str]) -> str:
    """The answer's HTML on a page that got the conversation on connect, then deltas."""
    parts = {"closed": "", "tail": ""}
    for frame in frames:
        for match in SNAPSHOT.finditer(frame):
            parts[match.group(2)] = match.group(3)
        for match in DELTA.finditer(frame):
            if match.group(2) == "closed":
                parts["closed"] += match.group(3)
            else:
                parts["tail"] = match.group(3)
    return parts["closed"] + parts["tail"]


async def read_deltas(communicator, count: int) -> list[str]:
    """Read frames until `count` of them carried answer text; return them all."""
    frames: list[str] = []
    while sum(1 for frame in frames if DELTA.search(frame)) < count:
        frames.append(await communicator.receive_from(timeout=30))
    return frames


async def test_a_page_opened_mid_answer_gets_the_text_so_far_then_the_rest(
    chat_session, user, medserver_settings
):
    medserver_settings(max_new_tokens=4000, default_temperature=1.0)
    sender = await connect(chat_session, user)
    await sender.send_json_to({"action": "send", "content": "Write at length"})
    await read_deltas(sender, 3)

    reopened = await connect(chat_session, user)  # a reload, or a reconnect after a drop
    first = await reopened.receive_from(timeout=10)
    assert '<div id="conversation"' in first and 'hx-swap-oob="true"' in first
    assert 'data-status="streaming"' in first
    assert visible_text(page_after([first])), "the text so far comes at once"
    frames = await read_deltas(reopened, 2)
    await sender.send_json_to({"action": "stop"})
    rest, _, status = await read_until_final(reopened)
    frames += rest

    assert status == "stopped"
    _, answer = await messages_of(chat_session)
    # Nothing missed and nothing twice: the deltas already in the first frame are skipped.
    assert visible_text(page_after([first, *frames])) == visible_text(
        render_markdown(answer.content)
    )
    await sender.disconnect()
    await reopened.disconnect()


async def test_a_page_that_is_up_to_date_is_sent_nothing_on_connect(chat_session, user):
    communicator = await connect(chat_session, user)
    await communicator.send_json_to({"action": "send", "content": "Q"})
    await read_until_final(communicator)
    await communicator.disconnect()
    path = await database_sync_to_async(selectors.active_path)(chat_session)
    stamp = selectors.conversation_stamp(path)

    current = await connect(chat_session, user, query=f"?seen={stamp}")
    assert await current.receive_nothing(timeout=0.5)
    stale = await connect(chat_session, user, query="?seen=0123456789abcdef")
    frame = await stale.receive_from(timeout=10)
    assert '<div id="conversation"' in frame and 'data-status="complete"' in frame
    await current.disconnect()
    await stale.disconnect()


# --- edit and regenerate over the socket


async def test_regenerate_streams_a_new_version_and_keeps_the_first(chat_session, user):
    communicator = await connect(chat_session, user)
    await communicator.send_json_to({"action": "send", "content": "Q"})
    _, first_id, _ = await read_until_final(communicator)

    await communicator.send_json_to({"action": "regenerate", "message_id": first_id})
    frames, second_id, status = await read_until_final(communicator)

    assert status == "complete" and second_id != first_id
    assert '<div id="conversation"' in frames[0]  # the branch on show changed
    assert ">2 / 2<" in frames[-1]
    messages = await messages_of(chat_session)
    assert [m.pk for m in messages if m.role == "assistant"] == [int(first_id), int(second_id)]
    await communicator.disconnect()


async def test_edit_resends_the_question_as_a_new_version(chat_session, user):
    communicator = await connect(chat_session, user)
    await communicator.send_json_to({"action": "send", "content": "Dose?"})
    await read_until_final(communicator)
    question = (await messages_of(chat_session))[0]

    await communicator.send_json_to(
        {"action": "edit", "message_id": str(question.pk), "text": "Dose for 20 kg?"}
    )
    _, _, status = await read_until_final(communicator)

    assert status == "complete"
    path = await database_sync_to_async(selectors.active_path)(chat_session)
    assert path[0].content == "Dose for 20 kg?" and path[0].parent_id is None
    assert (path[0].versions.number, path[0].versions.count) == (2, 2)
    await communicator.disconnect()


async def test_a_refused_edit_is_told_in_a_toast_and_saves_nothing(
    chat_session, user, medserver_settings
):
    communicator = await connect(chat_session, user)
    await communicator.send_json_to({"action": "send", "content": "Dose?"})
    await read_until_final(communicator)
    question = (await messages_of(chat_session))[0]
    medserver_settings(max_text_length=10)

    await communicator.send_json_to({"action": "edit", "message_id": question.pk, "text": "x" * 11})
    frame = await communicator.receive_from(timeout=10)

    assert 'id="toasts"' in frame and "the limit is 10" in frame
    assert len(await messages_of(chat_session)) == 2
    await communicator.send_json_to({"action": "regenerate", "message_id": 999999})
    assert "not understood" in await communicator.receive_from(timeout=10)
    await communicator.disconnect()


# --- the thinking panel


async def test_the_thinking_panel_closes_with_its_time_once_the_answer_begins():
    live = live_answers._LiveAnswer(limits.StreamSlot(owner_id=1), 1, "session")

    thinking = live_answers._advance(7, live, [Delta("thinking", "Consider **sepsis**.")])
    answering = live_answers._advance(
        7, live, [Delta("thinking", " Then fluids."), Delta("answer", "Start fluids.")]
    )

    assert '<div id="thinking-7-tail" hx-swap-oob="innerHTML"><p>Consider <strong>' in thinking
    assert '<details class="thinking" id="thinking-7" hx-swap-oob="true">' in answering
    assert "Thought for 1 s" in answering and "Then fluids." in answering
    assert '<div id="answer-7-tail" hx-swap-oob="innerHTML"><p>Start fluids.</p>' in answering
    assert live.thinking_ms is not None and live.seq == 2
    assert (live.snapshot().thinking, live.snapshot().content) == (
        "Consider **sepsis**. Then fluids.",
        "Start fluids.",
    )


async def test_a_trace_that_starts_after_the_answer_keeps_its_panel_open():
    live = live_answers._LiveAnswer(limits.StreamSlot(owner_id=1), 1, "session")

    frame = live_answers._advance(7, live, [Delta("answer", "Well"), Delta("thinking", "Hmm")])

    assert "Thought for" not in frame and live.thinking_ms is None
    assert '<div id="thinking-7-tail" hx-swap-oob="innerHTML"><p>Hmm</p>' in frame
