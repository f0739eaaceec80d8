"""Lone UTF-16 surrogates: JSON can spell them, no stored or tokenized text can hold them.

Each way text enters (the JSON APIs, the chat socket's send and edit) refuses
them with a message a person can act on; nothing is saved, the socket stays
open, and a proper surrogate pair (an emoji) still goes through.
"""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from api import tokens as api_tokens
from chat import services
from chat.models import Message
from chat.unicode_text import has_invalid_text
from tests.support.sockets import open_socket, read_until_final

pytestmark = pytest.mark.django_db


@pytest.fixture
def session(user, engine, medserver_settings):
    medserver_settings(rate_limit="10000/minute", default_temperature=0.0)
    return services.session_create(owner=user, model_name=engine.state.model)


@pytest.fixture
def api(client, user, session):
    key = api_tokens.api_token_create(owner=user, name="unicode")[1]

    def post(path: str, body: str):
        return client.post(
            path, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}"
        )

    return post


def test_lone_surrogates_are_found_anywhere_in_a_json_value():
    assert has_invalid_text({"messages": [{"content": "x\ud800"}]})
    assert has_invalid_text({"\udfff": 1})
    assert has_invalid_text(["a", ("b", "\udc00c")])
    assert not has_invalid_text({"messages": [{"content": "x\U0001f600 é 王"}]})


@pytest.mark.parametrize("path", ["/api/chat", "/v1/chat/completions"])
@pytest.mark.parametrize(
    "content",
    ['"x\\ud800"', '"\\udfff tail"', '[{"type": "text", "text": "a\\ud83d"}]'],
)
def test_api_refuses_lone_surrogates_with_a_400_and_saves_nothing(api, path, content):
    body = '{"model": "medserver-demo", "max_tokens": 2, "messages": '
    body += f'[{{"role": "user", "content": {content}}}]}}'

    response = api(path, body)

    assert response.status_code == 400, response.content[:300]
    assert "not valid Unicode" in response.json()["error"]["message"]
    assert Message.objects.count() == 0


def test_api_takes_a_surrogate_pair_as_the_character_it_spells(api):
    body = '{"max_tokens": 2, "messages": [{"role": "user", "content": "Rash \\ud83d\\ude00?"}]}'
    assert api("/api/chat", body).status_code == 200


@database_sync_to_async
def _message_count() -> int:
    return Message.objects.count()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "frame",
    [
        '{"action": "send", "content": "Findings x\\ud800"}',
        '{"action": "send", "content": "ok", "attachments": ["\\udc00"]}',
        '{"action": "edit", "message_id": 1, "text": "\\ud800"}',
    ],
)
async def test_socket_refuses_lone_surrogates_and_stays_open(session, user, frame):
    communicator, connected, _ = await open_socket(session, user)
    assert connected

    await communicator.send_to(text_data=frame)

    reply = await communicator.receive_from(timeout=5)
    assert 'role="alert"' in reply and "not valid Unicode" in reply, reply
    assert await _message_count() == 0
    # The same socket still answers a proper question.
    await communicator.send_json_to({"action": "send", "content": "Rash \U0001f600?"})
    _, _, status = await read_until_final(communicator)
    assert status == "complete"
    await communicator.disconnect()


def test_message_service_refuses_lone_surrogates(session):
    from chat.errors import Rejected

    with pytest.raises(Rejected, match="not valid Unicode"):
        services.message_send(session=session, content="x\ud800", attachment_ids=[])
    assert Message.objects.count() == 0
