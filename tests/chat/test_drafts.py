"""The composer's draft, kept on the server: typed text and images survive a sign-out."""

from __future__ import annotations

import io

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from chat import services
from chat.models import Draft
from medserver_site.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


def png() -> SimpleUploadedFile:
    out = io.BytesIO()
    Image.new("RGB", (16, 12), (90, 30, 200)).save(out, format="PNG")
    return SimpleUploadedFile("film.png", out.getvalue(), content_type="image/png")


@pytest.fixture
def chat(user, engine):
    return services.session_create(owner=user, model_name="demo")


def test_a_draft_with_its_image_comes_back_into_the_composer(client, user, chat):
    client.force_login(user)
    upload = client.post(f"/chat/{chat.pk}/attachments/", {"images": [png()]})
    attachment_id = upload.content.decode().split('name="attachments" value="')[1].split('"')[0]
    saved = client.post(
        "/account/draft/",
        {"session": str(chat.pk), "content": "54M, 3 days of fever", "attachments": attachment_id},
    )
    assert saved.status_code == 204
    page = client.get(f"/chat/{chat.pk}/").content.decode()
    composer = page.split('id="composer-form"')[1].split("</form>")[0]
    assert "54M, 3 days of fever</textarea>" in composer
    assert f'name="attachments" value="{attachment_id}"' in composer


def test_an_emptied_composer_and_a_sent_message_leave_no_draft(client, user, chat):
    client.force_login(user)
    client.post("/account/draft/", {"session": str(chat.pk), "content": "half a note"})
    assert Draft.objects.count() == 1
    client.post("/account/draft/", {"session": str(chat.pk), "content": ""})
    assert Draft.objects.count() == 0
    client.post("/account/draft/", {"session": str(chat.pk), "content": "the whole note"})
    services.message_send(session=chat, content="the whole note")
    assert Draft.objects.count() == 0


def test_a_draft_cannot_land_in_someone_elses_chat_or_take_their_images(
    client, user, other_user, chat
):
    theirs = services.session_create(owner=other_user, model_name="demo")
    client.force_login(other_user)
    upload = client.post(f"/chat/{theirs.pk}/attachments/", {"images": [png()]})
    their_image = upload.content.decode().split('name="attachments" value="')[1].split('"')[0]
    client.force_login(user)
    foreign = client.post("/account/draft/", {"session": str(theirs.pk), "content": "x"})
    assert foreign.status_code == 404
    assert (
        client.post("/account/draft/", {"session": "not-a-chat", "content": "x"}).status_code == 404
    )
    client.post(
        "/account/draft/",
        {"session": str(chat.pk), "content": "mine", "attachments": [their_image, "junk"]},
    )
    assert Draft.objects.get().attachment_ids == []


@pytest.mark.asyncio
async def test_a_question_sent_after_the_idle_timeout_is_kept_as_the_draft(
    user, chat, medserver_settings
):
    import time

    from django.contrib.sessions.backends.db import SessionStore

    medserver_settings(session_timeout=30)
    store = SessionStore()
    store["medserver_last_activity"] = time.time() - 31 * 60
    await database_sync_to_async(store.save)()
    socket = WebsocketCommunicator(application, f"/ws/chat/{chat.pk}/")
    socket.scope["user"] = user
    socket.scope["session"] = store
    socket.scope["headers"] = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
    assert (await socket.connect())[0]
    await socket.send_json_to({"action": "send", "content": "Dictated after lunch"})
    alert = await socket.receive_from(timeout=10)
    assert "not sent" in alert and "comes back after you sign in" in alert
    draft = await database_sync_to_async(Draft.objects.get)(session=chat)
    assert draft.text == "Dictated after lunch"


def test_a_draft_far_over_the_message_limit_is_refused_and_the_last_one_kept(
    client, user, chat, medserver_settings
):
    medserver_settings(max_text_length=10)
    client.force_login(user)
    client.post("/account/draft/", {"session": str(chat.pk), "content": "a" * 40})  # 4 x: kept
    refused = client.post("/account/draft/", {"session": str(chat.pk), "content": "b" * 41})
    assert refused.status_code == 400 and "it can keep 40" in refused.content.decode()
    assert Draft.objects.get().text == "a" * 40
