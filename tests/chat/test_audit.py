"""The audit trail: append-only, readable in admin, written where things happen."""

from __future__ import annotations

import pytest

from api import tokens as api_tokens
from audit.models import AuditEvent
from chat import services

pytestmark = pytest.mark.django_db

Action = AuditEvent.Action


def actions() -> list[str]:
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))


def test_sign_in_failure_and_sign_out_are_recorded_with_the_address(client, user):
    client.post("/accounts/login/", {"username": user.username, "password": "wrong"})
    client.post("/accounts/login/", {"username": user.username, "password": "a-long-passphrase"})
    client.post("/accounts/logout/")
    assert actions() == [Action.LOGIN_FAILED, Action.LOGIN, Action.LOGOUT]
    failed = AuditEvent.objects.get(action=Action.LOGIN_FAILED)
    assert failed.detail == user.username and failed.user is None
    assert failed.address == "127.0.0.1"
    assert "wrong" not in str(list(AuditEvent.objects.values()))  # no password kept


def test_api_token_use_is_recorded(client, user, engine):
    _, key = api_tokens.api_token_create(owner=user, name="PACS")
    client.get("/api/model-info", HTTP_AUTHORIZATION=f"Bearer {key}")
    event = AuditEvent.objects.get(action=Action.API_TOKEN_USE)
    assert event.user == user and event.target == "/api/model-info"


def test_staff_reviewing_a_chat_in_admin_is_recorded(client, user, django_user_model, engine):
    session = services.session_create(owner=user, model_name="demo")
    staff = django_user_model.objects.create_superuser("reviewer", password="a-long-passphrase")
    client.force_login(staff)
    assert client.get(f"/admin/chat/chatsession/{session.pk}/change/").status_code == 200
    event = AuditEvent.objects.get(action=Action.ADMIN_SESSION_VIEW)
    assert event.username == "reviewer" and event.target == f"chatsession:{session.pk}"
    assert client.get("/admin/audit/auditevent/").status_code == 200  # readable in admin


def test_events_are_never_changed_or_deleted(client, user, django_user_model):
    client.force_login(user)
    event = AuditEvent.objects.get(action=Action.LOGIN)
    event.detail = "rewritten"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    staff = django_user_model.objects.create_superuser("admin", password="a-long-passphrase")
    client.force_login(staff)
    change = client.get(f"/admin/audit/auditevent/{event.pk}/change/")
    assert b'name="_save"' not in change.content  # a view page, not a form
    assert client.get(f"/admin/audit/auditevent/{event.pk}/delete/").status_code == 403


def test_chats_opened_renamed_and_deleted_are_recorded(client, user, engine):
    session = services.session_create(owner=user, model_name="demo")
    client.force_login(user)
    client.get(f"/chat/{session.pk}/")
    client.post(f"/chat/{session.pk}/rename/", {"title": "Ward 3 review"})
    client.post(f"/chat/{session.pk}/delete/")
    events = AuditEvent.objects.exclude(action=Action.LOGIN).order_by("id")
    assert [(e.action, e.target) for e in events] == [
        (Action.SESSION_VIEW, f"chatsession:{session.pk}"),
        (Action.SESSION_RENAME, f"chatsession:{session.pk}"),
        (Action.SESSION_DELETE, f"chatsession:{session.pk}"),
    ]
    # The title is not kept: titles come from questions, and nothing may change the trail.
    assert "Ward 3" not in events[1].detail


def test_deleting_a_message_and_managing_tokens_are_recorded(client, user, engine):
    from chat.models import Message

    session = services.session_create(owner=user, model_name="demo")
    question, answer = services.message_send(session=session, content="Q")
    Message.objects.filter(pk=answer.pk).update(status="complete", content="A")
    client.force_login(user)
    client.post(f"/chat/{session.pk}/messages/{question.pk}/delete/", HTTP_HX_REQUEST="true")
    client.post("/account/api-tokens/", {"name": "PACS"})
    token = user.api_tokens.get()
    client.post(f"/account/api-tokens/{token.pk}/revoke/")
    assert actions()[1:] == [
        Action.MESSAGE_DELETE,
        Action.API_TOKEN_CREATE,
        Action.API_TOKEN_REVOKE,
    ]


def test_background_status_polling_is_not_a_chat_view(client, user, engine):
    client.force_login(user)
    for _ in range(3):
        client.get("/chat/status/")
    assert actions() == [Action.LOGIN]


@pytest.fixture
def append_only():
    """The audit table's triggers, as the migration creates them (the suite drops
    them, see tests/conftest.py; this test's transaction is rolled back after it)."""
    from django.db import connection

    from audit import guard

    with connection.cursor() as cursor:
        for statement in guard.CREATE:
            cursor.execute(statement)


def test_the_database_refuses_to_change_or_delete_events_by_any_path(user, append_only):
    from django.db import IntegrityError, connection, transaction

    from audit import trail

    trail.record(Action.EXPORT, user=user, target="chatsession:1")
    attempts = [
        lambda: AuditEvent.objects.update(detail="rewritten"),
        lambda: AuditEvent.objects.update(user=None, username="someone else"),
        lambda: AuditEvent.objects.all().delete(),
        lambda: connection.cursor().execute("DELETE FROM chat_auditevent"),
        lambda: connection.cursor().execute("UPDATE chat_auditevent SET action = 'login'"),
    ]
    for attempt in attempts:
        with pytest.raises(IntegrityError, match="audit events are never"), transaction.atomic():
            attempt()
    event = AuditEvent.objects.get()
    assert (event.action, event.detail, event.user) == (Action.EXPORT, "", user)


def test_deleting_a_user_keeps_their_events_under_their_name(user, append_only):
    from audit import trail

    trail.record(Action.EXPORT, user=user, target="chatsession:1")
    user.delete()
    event = AuditEvent.objects.get()
    assert event.user is None and event.username == "clinician"


def test_audit_prune_deletes_only_old_events_and_records_itself(user, append_only):
    import datetime

    from django.core.management import call_command
    from django.db import IntegrityError, transaction
    from django.utils import timezone

    from audit import trail

    trail.record(Action.EXPORT, user=user, target="chatsession:1")
    trail.record(Action.LOGIN, user=user)
    with transaction.atomic(), connection_cursor() as cursor:  # made old behind the triggers
        cursor.execute("DROP TRIGGER chat_auditevent_no_update")
        old = timezone.now() - datetime.timedelta(days=400)
        AuditEvent.objects.filter(action=Action.EXPORT).update(created_at=old)
    from audit import guard

    with connection_cursor() as cursor:
        cursor.execute(guard.NO_UPDATE)

    call_command("audit_prune", "--older-than-days", "365")

    assert sorted(actions()) == sorted([Action.LOGIN, Action.AUDIT_PRUNE])
    assert "1 event(s)" in AuditEvent.objects.get(action=Action.AUDIT_PRUNE).detail
    with pytest.raises(IntegrityError), transaction.atomic():  # the trigger is back
        AuditEvent.objects.all().delete()


def connection_cursor():
    from django.db import connection

    return connection.cursor()


def test_admin_bookmarks_from_before_the_audit_app_lead_to_it(client, admin_user):
    client.force_login(admin_user)
    moved = client.get("/admin/chat/auditevent/?action__exact=login")
    assert moved.status_code == 302
    assert moved["Location"] == "/admin/audit/auditevent/?action__exact=login"
    for old, new in (
        ("/admin/chat/apitoken/", "/admin/api/apitoken/"),
        ("/admin/chat/answerreview/", "/admin/reviews/answerreview/"),
    ):
        assert client.get(old)["Location"] == new
