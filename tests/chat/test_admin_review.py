"""Staff review in admin: a read-only, audited transcript; nothing written by hand."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from audit.models import AuditEvent
from chat import services
from chat.models import ChatSession, Message
from reviews import services as review_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, django_user_model):
    staff = django_user_model.objects.create_superuser("reviewer", password="a-long-passphrase")
    client.force_login(staff)
    return client


@pytest.fixture
def reviewed_chat(user):
    session = services.session_create(owner=user, model_name="demo")
    out = io.BytesIO()
    Image.new("RGB", (20, 10), (9, 9, 9)).save(out, format="PNG")
    upload = SimpleUploadedFile("cxr.png", out.getvalue(), content_type="image/png")
    image = services.attachment_create(owner=user, upload=upload)
    question, answer = services.message_send(
        session=session, content="PA film, cough", attachment_ids=[image.pk]
    )
    from tests.chat.conversation import finish_answer

    finish_answer(
        answer, "## Findings\n\n| Lung | Clear |\n|---|---|\n| L | yes |", thinking="Hmm."
    )
    review_services.answer_review(
        message=answer, reviewer=user, verdict="rejected", comment="Wrong side."
    )
    return session, image


def test_a_chat_opens_as_a_read_only_transcript_and_reading_it_is_audited(
    staff_client, reviewed_chat
):
    session, image = reviewed_chat
    page = staff_client.get(f"/admin/chat/chatsession/{session.pk}/change/")
    html = page.content.decode()
    assert page.status_code == 200 and "Transcript: PA film, cough" in html
    assert "<h2>Findings</h2>" in html and "<table>" in html  # the answer rendered
    assert '<details class="transcript-thinking">' in html  # thinking folded
    assert "REJECTED by clinician on" in html and "Wrong side." in html
    assert "How this answer was written" in html
    assert "<form" not in html.split('id="content-main"')[1]  # nothing to submit
    image_url = f"/admin/chat/chatsession/{session.pk}/images/{image.pk}/"
    assert image_url in html
    assert staff_client.get(image_url)["Content-Type"] == "image/png"
    event = AuditEvent.objects.get(action="admin_session_view")
    assert event.username == "reviewer" and event.target == f"chatsession:{session.pk}"


def test_nothing_a_clinician_wrote_can_be_added_changed_or_deleted_in_admin(
    staff_client, reviewed_chat
):
    session, _ = reviewed_chat
    answer = Message.objects.get(role="assistant")
    assert staff_client.get("/admin/chat/message/add/").status_code == 403
    assert staff_client.get(f"/admin/chat/chatsession/{session.pk}/delete/").status_code == 403
    changed = staff_client.post(
        f"/admin/chat/message/{answer.pk}/change/", {"content": "Rewritten", "role": "assistant"}
    )
    assert changed.status_code == 403
    answer.refresh_from_db()
    assert answer.content.startswith("## Findings")
    assert ChatSession.objects.filter(pk=session.pk).exists()


def test_the_review_list_names_the_answer_and_its_chat(staff_client, reviewed_chat):
    session, _ = reviewed_chat
    html = staff_client.get("/admin/reviews/answerreview/").content.decode()
    assert f"/admin/chat/chatsession/{session.pk}/change/#message-" in html
    assert "answer #None" not in html and "Feedback by on" not in html


def test_a_clinician_is_added_with_a_short_form(staff_client, django_user_model):
    form = staff_client.get("/admin/auth/user/add/").content.decode()
    assert 'name="email"' in form and 'name="is_staff"' in form
    assert 'name="user_permissions"' not in form and "?full=1" in form
    full = staff_client.get("/admin/auth/user/add/?full=1").content.decode()
    assert 'name="password1"' in full and 'name="email"' not in full
    staff_client.post(
        "/admin/auth/user/add/",
        {
            "username": "dr-new",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "ada@clinic.example",
            "password1": "a-long-passphrase-9",
            "password2": "a-long-passphrase-9",
            "is_staff": "on",
            "usable_password": "true",
        },
    )
    made = django_user_model.objects.get(username="dr-new")
    assert (
        made.is_staff
        and made.email == "ada@clinic.example"
        and made.check_password("a-long-passphrase-9")
    )
