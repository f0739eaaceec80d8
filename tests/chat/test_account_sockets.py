"""An open chat socket follows its sign-in: closed (4401) when the account is
disabled, its password changed or the session ended, and hostile frames get
an answer without closing it. Driven through the real consumer and routing.
"""

from __future__ import annotations

import time

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session

from chat import services
from chat.models import Message
from medserver_site.asgi import application
from tests.support.sockets import socket_headers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

CLOSED_WITHIN_SECONDS = 1.0


@pytest.fixture
def chat_session(user, engine, medserver_settings):
    return services.session_create(owner=user, model_name=engine.state.model)


async def open_signed_in(session, user, **session_data) -> tuple[WebsocketCommunicator, str]:
    communicator = WebsocketCommunicator(application, f"/ws/chat/{session.pk}/")
    headers = await socket_headers(user, **session_data)
    communicator.scope["headers"] = headers
    connected, _ = await communicator.connect()
    assert connected
    cookie = dict(headers)[b"cookie"].decode()
    return communicator, cookie.partition("=")[2]


async def closed_with(communicator, *, timeout: float) -> int | None:
    """The close code the socket gets within `timeout` seconds (frames before it
    skipped); None if it is not closed by then."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if await communicator.receive_nothing(timeout=left):
            return None
        output = await communicator.receive_output()
        if output["type"] == "websocket.close":
            return output.get("code")
    return None


async def still_open(communicator) -> bool:
    """Whether the socket still answers: a frame it does not understand gets its reply."""
    if not await communicator.receive_nothing(timeout=0.5):
        return False
    await communicator.send_json_to({"action": "dance"})
    return "not understood" in await communicator.receive_from(timeout=10)


def _disable(user_id: int) -> None:
    user = User.objects.get(pk=user_id)
    user.is_active = False
    user.save()


def _new_password(user_id: int) -> None:
    user = User.objects.get(pk=user_id)
    user.set_password("another-long-passphrase")
    user.save()


def _delete(user_id: int) -> None:
    User.objects.filter(pk=user_id).delete()


@pytest.mark.parametrize("change", [_disable, _new_password, _delete])
async def test_an_admins_change_to_the_account_closes_its_open_sockets_within_a_second(
    chat_session, user, other_user, change
):
    socket, _ = await open_signed_in(chat_session, user)
    other_chat = await database_sync_to_async(services.session_create)(
        owner=other_user, model_name="demo"
    )
    bystander, _ = await open_signed_in(other_chat, other_user)

    await database_sync_to_async(change)(user.pk)

    assert await closed_with(socket, timeout=CLOSED_WITHIN_SECONDS) == 4401
    assert await still_open(bystander)  # another user's socket stays
    await bystander.disconnect()


async def test_a_change_that_leaves_the_sign_in_valid_keeps_the_socket_open(chat_session, user):
    socket, _ = await open_signed_in(chat_session, user)
    fresh = await database_sync_to_async(User.objects.get)(pk=user.pk)
    fresh.last_name = "Kowalska"  # a change that leaves the sign-in valid
    await database_sync_to_async(fresh.save)()
    assert await still_open(socket)
    await socket.disconnect()


async def test_signing_out_closes_the_sockets_of_that_session(chat_session, user, async_client):
    await async_client.aforce_login(user)
    socket = WebsocketCommunicator(application, f"/ws/chat/{chat_session.pk}/")
    cookie = f"sessionid={async_client.cookies['sessionid'].value}".encode()
    socket.scope["headers"] = [
        (b"origin", b"http://localhost"),
        (b"host", b"localhost"),
        (b"cookie", cookie),
    ]
    assert (await socket.connect())[0]
    other_tab, _ = await open_signed_in(chat_session, user)  # another sign-in of the user

    await async_client.post("/accounts/logout/")

    assert await closed_with(socket, timeout=CLOSED_WITHIN_SECONDS) == 4401
    assert await still_open(other_tab)
    await other_tab.disconnect()


@pytest.mark.parametrize("action", ["send", "stop", "regenerate", "dance"])
async def test_a_late_frame_after_the_session_ended_closes_with_4401_and_saves_nothing(
    chat_session, user, action
):
    """A flushed or expired session (sign-out from another process, the session
    table cleared): the next frame of any kind closes the socket, never 1011."""
    socket, key = await open_signed_in(chat_session, user)
    await database_sync_to_async(Session.objects.filter(session_key=key).delete)()

    await socket.send_json_to({"action": action, "content": "Still there?", "message_id": "1"})

    assert "signed out" in await socket.receive_from(timeout=10)
    assert await closed_with(socket, timeout=5) == 4401
    assert await database_sync_to_async(Message.objects.count)() == 0


async def test_a_frame_after_the_password_changed_elsewhere_closes_with_4401(chat_session, user):
    """A change the channel layer never hears of (manage.py changepassword, another
    process): caught at the next frame."""
    socket, _ = await open_signed_in(chat_session, user)
    await database_sync_to_async(
        lambda: User.objects.filter(pk=user.pk).update(password="pbkdf2_sha256$1$x$y")
    )()
    await socket.send_json_to({"action": "send", "content": "Still there?"})
    assert "signed out" in await socket.receive_from(timeout=10)
    assert await closed_with(socket, timeout=5) == 4401
    assert await database_sync_to_async(Message.objects.count)() == 0


async def test_a_binary_frame_after_the_account_was_disabled_closes_with_4401(chat_session, user):
    socket, _ = await open_signed_in(chat_session, user)
    await database_sync_to_async(User.objects.filter(pk=user.pk).update)(is_active=False)
    await socket.send_to(bytes_data=b"\x00\x01")
    assert "signed out" in await socket.receive_from(timeout=10)
    assert await closed_with(socket, timeout=5) == 4401


HOSTILE_IDS = [
    "1e400",
    "Infinity",
    "-Infinity",
    "NaN",
    "1e308",
    "1.5",
    "-1",
    "0",
    "9" * 40,
    '"9999999999999999999999"',
    '"1e400"',
    '" 12"',
    '"١٢"',  # Arabic-Indic digits: str.isdigit() says yes, int() reads them
    "true",
    "null",
    "[1]",
    '{"id": 1}',
]


@pytest.mark.parametrize("message_id", HOSTILE_IDS)
@pytest.mark.parametrize("action", ["regenerate", "edit"])
async def test_a_hostile_message_id_gets_an_error_frame_and_the_socket_stays_open(
    chat_session, user, action, message_id
):
    socket, _ = await open_signed_in(chat_session, user)
    frame = f'{{"action": "{action}", "message_id": {message_id}, "text": "x"}}'
    await socket.send_to(text_data=frame)
    assert "not understood" in await socket.receive_from(timeout=10)
    # Still open and serving: a plain request gets its answer.
    await socket.send_json_to({"action": "dance"})
    assert "not understood" in await socket.receive_from(timeout=10)
    await socket.disconnect()


@pytest.mark.parametrize(
    "frame",
    [
        '{"action": "send", "content": "Hi", "attachments": [1e400, NaN]}',
        '{"action": "send", "content": "Hi", "attachments": {"a": 1}}',
        '{"action": "send", "content": 1e400}',
        '{"action": ["send"]}',
        '{"action": {"$gt": ""}}',
        '{"action": "edit", "message_id": "1", "text": ["x"]}',
        "[" * 100_000,
        '"just a string"',
        "12345678901234567890" * 300,
    ],
)
async def test_hostile_frames_get_an_error_frame_and_the_socket_stays_open(
    chat_session, user, frame
):
    socket, _ = await open_signed_in(chat_session, user)
    await socket.send_to(text_data=frame)
    reply = await socket.receive_from(timeout=10)
    assert "not understood" in reply or "no longer available" in reply
    await socket.send_json_to({"action": "dance"})
    assert "not understood" in await socket.receive_from(timeout=10)
    assert await database_sync_to_async(Message.objects.count)() == 0
    await socket.disconnect()


@pytest.mark.parametrize(
    "origin, accepted",
    [
        (b"http://localhost", True),
        (b"http://LOCALHOST:80", True),
        (b"http://localhost:5555", False),  # another port of the same machine
        (b"https://localhost", False),  # another scheme
        (b"file://localhost", False),
        (b"null", False),
        (b"http://evil.example", False),
        (b"http://localhost.evil.example", False),
        (b"http://user@localhost", False),
    ],
)
async def test_the_socket_origin_must_be_this_servers_scheme_host_and_port(
    chat_session, user, origin, accepted
):
    from tests.support.sockets import open_socket

    communicator, connected, _ = await open_socket(chat_session, user, origin=origin)
    assert connected is accepted
    if connected:
        await communicator.disconnect()
