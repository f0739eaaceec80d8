"""Retention: exactly the expired chats go, with their files; held and reviewed ones stay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from audit.models import AuditEvent
from chat import services
from chat.models import Attachment, ChatSession, Message
from lifecycle.holds import session_hold, session_release
from lifecycle.retention import retention_apply
from medserver_site.cli import parse_config
from reviews import services as review_services
from tests.chat.conversation import finish_answer
from tests.lifecycle.content import noise_png

pytestmark = pytest.mark.django_db
DAYS = 30


def chat(owner, title: str, *, idle_days: float, image: bool = True) -> ChatSession:
    """A chat with a question (and its image) and an answer, last active `idle_days` ago."""
    session = services.session_create(owner=owner, model_name="demo")
    ids = []
    if image:
        upload = services.attachments_upload(
            owner=owner, session=session, uploads=[SimpleUploadedFile("x.png", noise_png(32))]
        )
        ids = [a.pk for a in upload.attachments]
    _, answer = services.message_send(session=session, content=title, attachment_ids=ids)
    finish_answer(answer, f"answer to {title}")
    idle = timezone.now() - timedelta(days=idle_days)
    ChatSession.objects.filter(pk=session.pk).update(updated_at=idle, title=title)
    return session


def files_of(session: ChatSession) -> list[str]:
    return list(Attachment.objects.filter(message__session=session).values_list("file", flat=True))


def test_retention_deletes_exactly_the_expired_chats_and_their_files(
    user, other_user, django_capture_on_commit_callbacks
):
    expired = chat(user, "expired", idle_days=DAYS + 1)
    expired_other = chat(other_user, "expired too", idle_days=DAYS + 200)
    recent = chat(user, "recent", idle_days=DAYS - 1)
    held = chat(user, "held", idle_days=DAYS + 50)
    session_hold(session=held, by="dr-admin", reason="legal review")
    reviewed = chat(user, "reviewed", idle_days=DAYS + 50)
    answer = reviewed.messages.get(role="assistant")
    review_services.answer_review(message=answer, reviewer=other_user, rating="up")
    gone_files = files_of(expired) + files_of(expired_other)
    kept_files = files_of(recent) + files_of(held) + files_of(reviewed)
    # An image uploaded long ago and never sent goes too; one uploaded today stays.
    stale = services.attachments_upload(
        owner=user, session=recent, uploads=[SimpleUploadedFile("s.png", noise_png(32))]
    ).attachments[0]
    Attachment.objects.filter(pk=stale.pk).update(
        created_at=timezone.now() - timedelta(days=DAYS + 1)
    )
    fresh = services.attachments_upload(
        owner=user, session=recent, uploads=[SimpleUploadedFile("f.png", noise_png(32))]
    ).attachments[0]
    assert all(default_storage.exists(name) for name in gone_files + kept_files)

    with django_capture_on_commit_callbacks(execute=True):  # files go once it is committed
        done = retention_apply(days=DAYS)

    assert (done.chats, done.messages, done.images, done.unsent_images) == (2, 4, 2, 1)
    left = set(ChatSession.objects.values_list("title", flat=True))
    assert left == {"recent", "held", "reviewed"}
    assert not Message.objects.filter(session_id__in=[expired.pk, expired_other.pk]).exists()
    assert not any(default_storage.exists(name) for name in gone_files + [stale.file.name])
    assert all(default_storage.exists(name) for name in kept_files + [fresh.file.name])
    assert set(Attachment.objects.values_list("pk", flat=True)) == {
        *Attachment.objects.filter(message__session__in=[recent, held, reviewed]).values_list(
            "pk", flat=True
        ),
        fresh.pk,
    }
    event = AuditEvent.objects.get(action=AuditEvent.Action.RETENTION)
    assert event.detail.startswith("2 chats idle for more than 30 days deleted")
    assert "expired" not in event.detail  # counts, never the content


def test_a_released_hold_lets_retention_delete_the_chat(user):
    held = chat(user, "under review", idle_days=DAYS + 1, image=False)
    session_hold(session=held, by="dr-admin", reason="clinical review")
    held.refresh_from_db()
    # Placing a hold is not activity: the chat keeps its age.
    assert held.updated_at < timezone.now() - timedelta(days=DAYS)
    assert retention_apply(days=DAYS).chats == 0

    session_release(session=held, by="dr-admin")
    assert retention_apply(days=DAYS).chats == 1
    actions = list(AuditEvent.objects.order_by("id").values_list("action", "username", "detail"))
    assert actions[0] == ("session_hold", "dr-admin", "clinical review")
    assert [a[0] for a in actions[1:]] == ["retention", "session_release", "retention"]


def test_a_chat_with_an_answer_being_written_is_never_expired(user):
    session = services.session_create(owner=user, model_name="demo")
    services.message_send(session=session, content="still answering")
    ChatSession.objects.filter(pk=session.pk).update(
        updated_at=timezone.now() - timedelta(days=DAYS + 1)
    )
    assert retention_apply(days=DAYS).chats == 0
    assert ChatSession.objects.filter(pk=session.pk).exists()


def test_retention_is_off_unless_asked_for():
    assert parse_config(["-m", "demo"]).retention_days == 0
    assert parse_config(["-m", "demo", "--retention-days", "90"]).retention_days == 90
    with pytest.raises(SystemExit):
        parse_config(["-m", "demo", "--retention-days", "-1"])


def test_an_admin_places_and_releases_a_hold_from_the_chat_list(user, admin_client):
    session = chat(user, "for the lawyers", idle_days=DAYS + 1, image=False)
    url = "/admin/chat/chatsession/"
    response = admin_client.post(url, {"action": "place_hold", "_selected_action": [session.pk]})
    assert response.status_code == 302
    session.refresh_from_db()
    assert session.held_at is not None and session.held_by == "admin"
    assert retention_apply(days=DAYS).chats == 0
    assert "for the lawyers" in admin_client.get(url + "?held_at__isempty=0").content.decode()

    admin_client.post(url, {"action": "release_hold", "_selected_action": [session.pk]})
    session.refresh_from_db()
    assert session.held_at is None
