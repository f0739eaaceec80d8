"""Answers cut off at their token limit: said so everywhere, and continued in place."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.utils.html import strip_tags

import exports
from chat import services
from chat.errors import Rejected
from chat.models import Message
from chat.templatetags.chat_format import copied_answer
from tests.chat.conversation import exchange
from tests.support.sockets import connect, read_until_final

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def short_answers(user, engine, medserver_settings):
    # Greedy and short: the random demo model never ends a turn in 6 tokens.
    medserver_settings(default_temperature=0.0, max_new_tokens=6)
    session = services.session_create(owner=user, model_name=engine.state.model)
    services.session_set_thinking(session=session, thinking=False)  # no budget for a trace
    return session


@pytest.mark.asyncio
async def test_continue_appends_to_the_same_answer_and_keeps_its_provenance(user, short_answers):
    socket = await connect(short_answers, user)
    await socket.send_json_to({"action": "send", "content": "List causes of chest pain."})
    frames, answer_id, status = await read_until_final(socket)
    answer = await database_sync_to_async(Message.objects.get)(pk=answer_id)
    assert answer.finish_reason == "length" and answer.completion_tokens == 6
    assert "Cut off at 6 tokens" in frames[-1] and '"action": "continue"' in frames[-1]
    first_text, provenance = answer.content, (answer.model_name, answer.sampling)

    await socket.send_json_to({"action": "continue", "message_id": answer_id})
    frames, continued_id, status = await read_until_final(socket)
    assert continued_id == answer_id and status == "streaming"  # in place, its text kept
    assert first_text[:4] in strip_tags(frames[-1])
    frames, continued_id, status = await read_until_final(socket)
    assert continued_id == answer_id and status == "complete"
    answer = await database_sync_to_async(Message.objects.get)(pk=answer_id)
    assert answer.content.startswith(first_text) and len(answer.content) > len(first_text)
    assert answer.completion_tokens == 12  # both parts counted
    assert (answer.model_name, answer.sampling) == provenance
    assert await database_sync_to_async(Message.objects.filter(role="assistant").count)() == 1
    assert first_text in strip_tags(frames[-1])
    await socket.disconnect()


def test_only_a_cut_off_answer_can_be_continued(user, short_answers):
    _, finished = exchange(short_answers, "Q", "A whole answer.", reason="stop")
    with pytest.raises(Rejected, match="cut off"):
        services.answer_continue(answer=finished)
    question, _ = exchange(short_answers, "Q2", "Half an ans", reason="length")
    with pytest.raises(Rejected, match="cut off"):
        services.answer_continue(answer=question)


def test_copy_and_exports_say_an_answer_was_cut_off(user, short_answers):
    _, answer = exchange(short_answers, "Causes?", "1. Angina\n2. Peri", reason="length")
    assert copied_answer(answer).startswith("Cut off at 20 tokens: the answer reached")
    markdown = exports.session_export(short_answers, "md").content.decode()
    body = markdown.split("## Answer 1")[1]
    assert body.index("**Cut off at 20 tokens") < body.index("1. Angina")
    _, whole = exchange(short_answers, "Again?", "Done.", reason="stop")
    assert "Cut off" not in copied_answer(whole)
