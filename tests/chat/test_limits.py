"""--rate-limit and --max-history-messages on the pages and the chat socket."""

from __future__ import annotations

import pytest
from channels.testing import WebsocketCommunicator

from api import tokens as api_tokens
from chat import services
from medserver_site.asgi import application
from tests.support.sockets import socket_headers

pytestmark = pytest.mark.django_db(transaction=True)


def test_page_posts_that_ask_nothing_of_the_model_get_ten_times_the_budget(
    client, user, medserver_settings
):
    medserver_settings(rate_limit="5/minute")
    codes = [
        client.post("/accounts/login/", {"username": user.username, "password": "x"}).status_code
        for _ in range(52)
    ]
    assert codes == [200] * 50 + [429, 429]
    refused = client.post("/accounts/login/", {"username": user.username, "password": "x"})
    assert 1 <= int(refused["Retry-After"]) <= 60
    text = refused.content.decode()
    assert "Too many clicks" in text and "the limit is 50 a minute" in text
    assert f"allowed in {refused['Retry-After']} s" in text
    assert "medserver:toast" in refused["HX-Trigger"]


@pytest.fixture
def chat_and_key(user, engine, medserver_settings):
    medserver_settings(rate_limit="3/minute", max_new_tokens=4)
    session = services.session_create(owner=user, model_name="demo")
    return session, api_tokens.api_token_create(owner=user, name="t")[1]


@pytest.mark.asyncio
async def test_socket_messages_share_the_budget_with_http(async_client, user, chat_and_key):
    session, key = chat_and_key
    api = await async_client.post(
        "/api/chat",
        {"messages": [{"role": "user", "content": "Hi"}], "stream": False},
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert api.status_code == 200  # an API completion: one of the three
    socket = WebsocketCommunicator(application, f"/ws/chat/{session.pk}/")
    socket.scope["client"] = ("127.0.0.1", 50000)
    socket.scope["headers"] = await socket_headers(user)
    assert (await socket.connect())[0]
    for n in range(3):  # the API call and two sends spend the budget; the third is refused
        await socket.send_json_to({"action": "send", "content": f"Question {n}"})
    frames = []
    while not await socket.receive_nothing(timeout=3):
        frames.append(await socket.receive_from())
    refused = [frame for frame in frames if "Too many questions" in frame]
    assert len(refused) == 1
    assert "the limit is 3 a minute" in refused[0] and "The next is allowed in" in refused[0]
    await socket.disconnect()


@pytest.mark.asyncio
async def test_review_clicks_leave_the_next_question_answered(async_client, user, chat_and_key):
    from channels.db import database_sync_to_async

    from chat.models import Message

    session, key = chat_and_key
    _, answer = await database_sync_to_async(services.message_send)(session=session, content="Q")
    await database_sync_to_async(Message.objects.filter(pk=answer.pk).update)(status="complete")
    await async_client.aforce_login(user)
    url = f"/chat/{session.pk}/messages/{answer.pk}/review/"
    for n in range(30):  # ten times the budget of questions, in well under a minute
        rating = "up" if n % 2 == 0 else ""
        assert (await async_client.post(url, {"rating": rating})).status_code in (200, 302)
    api = await async_client.post(
        "/api/chat",
        {"messages": [{"role": "user", "content": "Still there?"}], "stream": False},
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert api.status_code == 200, api.content


def test_a_chat_at_the_history_limit_refuses_more(user, medserver_settings):
    from chat.errors import Rejected
    from chat.models import Message

    medserver_settings(max_history_messages=4)
    session = services.session_create(owner=user, model_name="demo")
    for n in range(2):
        _, answer = services.message_send(session=session, content=f"Q{n}")
        Message.objects.filter(pk=answer.pk).update(status="complete", content="A")
    with pytest.raises(Rejected, match="limit is 4"):
        services.message_send(session=session, content="One more")


@pytest.fixture
def idle_socket_session(user, engine, medserver_settings):
    medserver_settings(session_timeout=30)
    return services.session_create(owner=user, model_name="demo")


@pytest.mark.asyncio
async def test_a_socket_left_open_past_the_idle_timeout_cannot_send(user, idle_socket_session):
    import time

    from channels.db import database_sync_to_async

    session = idle_socket_session
    socket = WebsocketCommunicator(application, f"/ws/chat/{session.pk}/")
    idle = {"medserver_last_activity": time.time() - 31 * 60}
    socket.scope["headers"] = await socket_headers(user, **idle)
    assert (await socket.connect())[0]
    await socket.send_json_to({"action": "send", "content": "After lunch"})
    assert "signed out" in await socket.receive_from(timeout=10)
    assert (await socket.receive_output(timeout=10))["type"] == "websocket.close"
    assert await database_sync_to_async(session.messages.count)() == 0


def test_anonymous_posts_from_an_address_leave_signed_in_users_there_their_budget(
    client, user, medserver_settings, django_user_model
):
    """A crowd signing in behind one NAT address spends the anonymous budget only."""
    from django.test import Client

    medserver_settings(rate_limit="3/minute")  # sign-ins are not generations: 30 a minute
    crowd = [
        client.post("/accounts/login/", {"username": f"nurse{n}", "password": "x"}).status_code
        for n in range(31)
    ]
    assert crowd[-1] == 429  # the address's anonymous budget is spent

    signed_in = Client()  # the same address (127.0.0.1), signed in
    signed_in.force_login(user)
    session = services.session_create(owner=user, model_name="demo")
    response = signed_in.post(f"/chat/{session.pk}/thinking/", {"thinking": "on"})
    assert response.status_code != 429


def test_an_account_is_locked_after_repeated_failed_sign_ins_whatever_the_address(
    client, user, other_user, medserver_settings
):
    from django.test import Client

    from chat import sign_in_lockout

    medserver_settings(rate_limit="1000/minute")
    for n in range(sign_in_lockout.FAILURES_BEFORE_LOCK):
        guesser = Client(REMOTE_ADDR=f"10.0.0.{n + 1}")  # a new address for every guess
        guesser.post("/accounts/login/", {"username": user.username.upper(), "password": "x"})

    right = {"username": user.username, "password": "a-long-passphrase"}
    refused = client.post("/accounts/login/", right)
    assert refused.status_code == 200 and "_auth_user_id" not in client.session
    assert "locked" in refused.content.decode()
    admin_login = client.post("/admin/login/", right)
    assert "_auth_user_id" not in client.session and "locked" in admin_login.content.decode()
    # Another account is not affected.
    other = {"username": other_user.username, "password": "a-long-passphrase"}
    assert client.post("/accounts/login/", other).status_code == 302


def test_stream_slots_released_from_other_threads_never_break_a_reservation(
    user, medserver_settings
):
    """A streamed response's close() releases its slot from a thread of Django's own
    while the event loop counts the slots to reserve one: neither may trip the other."""
    import sys
    import threading

    from chat import limits

    medserver_settings(max_user_streams=1_000_000)
    held = [limits.reserve_stream(user) for _ in range(5_000)]
    errors: list[BaseException] = []

    def release_all() -> None:
        try:
            for slot in held:
                limits.release_stream(slot)
        except BaseException as error:  # noqa: BLE001 - the test reports it
            errors.append(error)

    releaser = threading.Thread(target=release_all)
    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # the threads interleave as often as they can
    try:
        releaser.start()
        mine = []
        while releaser.is_alive():
            try:
                mine.append(limits.reserve_stream(user))  # counts every slot held
            except RuntimeError as error:  # "Set changed size during iteration"
                errors.append(error)
        releaser.join()
    finally:
        sys.setswitchinterval(switching)
    for slot in mine:
        limits.release_stream(slot)
    assert errors == []
    assert not any(slot.owner_id == user.pk for slot in limits._active)
