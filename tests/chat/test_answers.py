"""Answers are written in the background, apart from the page or request that asked."""

from __future__ import annotations

import asyncio
import time

import pytest
from channels.db import database_sync_to_async

from chat import answers, limits, services, stream_html
from chat.models import Message

pytestmark = pytest.mark.django_db(transaction=True)


async def test_an_answer_whose_request_goes_away_while_it_is_saved_is_written_all_the_same(
    user, engine, medserver_settings
):
    session = await database_sync_to_async(services.session_create)(
        owner=user, model_name=engine.state.model
    )

    def save():
        time.sleep(0.3)  # the request is cancelled meanwhile (a closed tab, a dropped POST)
        question, answer = services.message_send(session=session, content="Still there?")
        return answer, lambda: stream_html.messages_added(question, answer)

    asking = asyncio.ensure_future(answers.begin_answer(user, session.pk, save))
    await asyncio.sleep(0.1)
    asking.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asking

    for _ in range(300):
        saved = await database_sync_to_async(lambda: list(session.messages.order_by("id")))()
        if len(saved) == 2 and saved[1].status != Message.Status.STREAMING:
            break
        await asyncio.sleep(0.1)
    assert saved[1].status == Message.Status.COMPLETE and saved[1].content
    assert not any(slot.owner_id == user.pk for slot in limits._active)
