"""Versions of a turn (edit, regenerate), switching between them, and deletion.

Services and selectors against the real database: what is saved, what the
page shows (the active branch) and what the model is shown.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from PIL import Image

from chat import selectors, services
from chat.errors import Rejected
from chat.models import Attachment, ChatSession, Message
from inference.engine import ChatTurn
from tests.chat.conversation import exchange, finish_answer

pytestmark = pytest.mark.django_db


@pytest.fixture
def session(user) -> ChatSession:
    return services.session_create(owner=user, model_name="MedGemma demo")


def _shown(session: ChatSession) -> list[str]:
    return [m.content for m in selectors.active_path(session)]


def _image(owner) -> Attachment:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 10)).save(out, format="PNG")
    upload = SimpleUploadedFile("scan.png", out.getvalue(), content_type="image/png")
    return services.attachment_create(owner=owner, upload=upload)


# --- a conversation is a chain of parents


def test_each_message_follows_the_one_before(session):
    q1, a1 = exchange(session, "Q1", "A1")
    q2, a2 = exchange(session, "Q2", "A2")

    assert [q1.parent_id, a1.parent_id, q2.parent_id, a2.parent_id] == [None, q1.pk, a1.pk, q2.pk]
    assert _shown(session) == ["Q1", "A1", "Q2", "A2"]
    assert all(m.versions.count == 1 for m in selectors.active_path(session))


# --- regenerate


def test_regenerate_adds_a_new_version_and_keeps_the_old_one(session):
    question, first = exchange(session, "Q1", "First answer")

    second = services.answer_regenerate(answer=first, model_name="demo")

    assert second.parent_id == question.pk
    assert second.status == Message.Status.STREAMING
    first.refresh_from_db()
    assert first.content == "First answer" and not first.active
    path = selectors.active_path(session)
    assert [m.pk for m in path] == [question.pk, second.pk]
    assert (path[1].versions.number, path[1].versions.count) == (2, 2)
    assert path[1].versions.previous_id == first.pk and path[1].versions.next_id is None


def test_regenerating_an_earlier_answer_branches_off_what_followed_it(session):
    _, a1 = exchange(session, "Q1", "A1")
    exchange(session, "Q2", "A2")

    again = finish_answer(services.answer_regenerate(answer=a1), "A1 again")

    assert _shown(session) == ["Q1", "A1 again"]
    services.message_select(message=a1)
    assert _shown(session) == ["Q1", "A1", "Q2", "A2"]  # the later turns are still there
    services.message_select(message=again)
    assert _shown(session) == ["Q1", "A1 again"]


def test_a_question_cannot_be_regenerated(session):
    question, _ = exchange(session, "Q1", "A1")
    with pytest.raises(Rejected, match="Only answers"):
        services.answer_regenerate(answer=question)


def test_regenerate_is_refused_while_an_answer_is_being_written(session):
    _, a1 = exchange(session, "Q1", "A1")
    services.message_send(session=session, content="Q2")  # its answer is streaming

    with pytest.raises(Rejected, match="still being written"):
        services.answer_regenerate(answer=a1)
    assert Message.objects.filter(session=session).count() == 4


# --- edit


def test_edit_saves_a_new_version_of_the_question_with_a_fresh_answer(session):
    q1, a1 = exchange(session, "Q1", "A1")
    q2, a2 = exchange(session, "Dose for a child?", "A2")

    edited, answer = services.message_edit(message=q2, content="Dose for a 20 kg child?")

    assert edited.parent_id == a1.pk and answer.parent_id == edited.pk
    assert answer.status == Message.Status.STREAMING
    assert _shown(session) == ["Q1", "A1", "Dose for a 20 kg child?", ""]
    finish_answer(answer, "A2 for 20 kg")
    services.message_select(message=q2)
    assert _shown(session) == ["Q1", "A1", "Dose for a child?", "A2"]
    assert selectors.active_path(session)[2].versions.next_id == edited.pk


def test_the_edited_question_keeps_the_original_images(session, user):
    image = _image(user)
    question, answer = services.message_send(
        session=session, content="Describe", attachment_ids=[image.pk]
    )
    finish_answer(answer, "A")

    edited, _ = services.message_edit(message=question, content="Describe the left lung")

    (copy,) = edited.attachments.all()
    assert copy.file.name == image.file.name and copy.pk != image.pk
    assert question.attachments.get().pk == image.pk


def test_edit_checks_the_text_like_a_new_message(session, medserver_settings):
    medserver_settings(max_text_length=10)
    question, _ = exchange(session, "Short", "A")

    with pytest.raises(Rejected, match="limit is 10"):
        services.message_edit(message=question, content="x" * 11)
    with pytest.raises(Rejected, match="Type a message"):
        services.message_edit(message=question, content="   ")
    assert Message.objects.filter(session=session).count() == 2


def test_an_answer_cannot_be_edited(session):
    _, answer = exchange(session, "Q1", "A1")
    with pytest.raises(Rejected, match="Only questions"):
        services.message_edit(message=answer, content="Better answer")


def test_a_new_message_follows_the_branch_on_show(session):
    q1, a1 = exchange(session, "Q1", "A1")
    exchange(session, "Q2", "A2")
    services.answer_regenerate(answer=a1)
    services.answer_fail(selectors.active_path(session)[-1].pk, content="", thinking="", error="x")
    services.message_select(message=a1)

    question, _ = services.message_send(session=session, content="Q3")

    assert _shown(session) == ["Q1", "A1", "Q2", "A2", "Q3", ""]


def test_a_new_message_and_its_answer_are_each_the_only_version_of_their_turn(session):
    """What chat.stream_html.messages_added shows them as, without asking the database."""
    q1, a1 = exchange(session, "Q1", "A1")
    finish_answer(services.answer_regenerate(answer=a1), "A1 again")
    finish_answer(services.message_edit(message=q1, content="Q1 again")[1], "A1 to Q1 again")
    services.message_select(message=a1)

    for message in services.message_send(session=session, content="Q2"):
        assert selectors.versions_of(message) == selectors.Versions(1, 1, None, None)


# --- what the model sees


def test_the_model_sees_only_the_branch_that_leads_to_its_answer(session):
    q1, a1 = exchange(session, "Q1", "A1")
    exchange(session, "Q2 original", "A2 original")
    question_path = selectors.active_path(session)
    edited, answer = services.message_edit(message=question_path[2], content="Q2 edited")

    assert selectors.conversation_before(answer) == (
        ChatTurn("user", "Q1"),
        ChatTurn("assistant", "A1"),
        ChatTurn("user", "Q2 edited"),
    )
    regenerated = services.answer_regenerate(answer=finish_answer(answer, "A2 edited"))
    assert selectors.conversation_before(regenerated) == (
        ChatTurn("user", "Q1"),
        ChatTurn("assistant", "A1"),
        ChatTurn("user", "Q2 edited"),
    )


# --- switching versions


def test_only_one_version_of_a_turn_can_be_active(session):
    question, first = exchange(session, "Q1", "A1")
    services.answer_regenerate(answer=first)

    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.filter(pk=first.pk).update(active=True)


def test_switching_is_refused_while_an_answer_is_being_written(session):
    _, first = exchange(session, "Q1", "A1")
    services.answer_regenerate(answer=first)  # streaming

    with pytest.raises(Rejected, match="still being written"):
        services.message_select(message=first)


# --- delete


def test_deleting_the_last_question_removes_it_and_its_answer(session):
    exchange(session, "Q1", "A1")
    q2, _ = exchange(session, "Q2", "A2")

    services.message_delete(message=q2)

    assert _shown(session) == ["Q1", "A1"]
    assert Message.objects.filter(session=session).count() == 2


def test_deleting_an_earlier_question_removes_what_followed_it_in_its_branch(session):
    q1, _ = exchange(session, "Q1", "A1")
    exchange(session, "Q2", "A2")

    services.message_delete(message=q1)

    assert Message.objects.filter(session=session).count() == 0


def test_deleting_a_version_shows_the_one_before_it(session):
    _, first = exchange(session, "Q1", "First")
    second = finish_answer(services.answer_regenerate(answer=first), "Second")

    services.message_delete(message=second)

    assert _shown(session) == ["Q1", "First"]
    first.refresh_from_db()
    assert first.active


def test_deleting_the_first_of_two_versions_shows_the_other(session):
    _, first = exchange(session, "Q1", "First")
    finish_answer(services.answer_regenerate(answer=first), "Second")
    services.message_select(message=first)

    services.message_delete(message=first)

    assert _shown(session) == ["Q1", "Second"]


def test_deleting_an_only_answer_takes_its_question_with_it(session):
    exchange(session, "Q1", "A1")
    _, a2 = exchange(session, "Q2", "A2")

    services.message_delete(message=a2)

    assert _shown(session) == ["Q1", "A1"]


@pytest.mark.django_db(transaction=True)
def test_image_files_go_when_no_version_refers_to_them(user):
    session = services.session_create(owner=user, model_name="demo")
    image = _image(user)
    path = Path(image.file.path)
    question, answer = services.message_send(
        session=session, content="Describe", attachment_ids=[image.pk]
    )
    finish_answer(answer, "A")
    edited, edited_answer = services.message_edit(message=question, content="Describe again")
    finish_answer(edited_answer, "B")

    services.message_delete(message=edited)
    assert path.exists()  # the original question still shows it

    services.message_delete(message=question)
    assert not path.exists()


def test_delete_is_refused_while_an_answer_is_being_written(session):
    q1, _ = exchange(session, "Q1", "A1")
    services.message_send(session=session, content="Q2")

    with pytest.raises(Rejected, match="still being written"):
        services.message_delete(message=q1)


# --- older chats


def test_the_migration_links_a_chat_saved_before_branches_into_one_line(session):
    from importlib import import_module

    from django.apps import apps

    migration = import_module("chat.migrations.0003_branches_and_session_settings")
    # Before branches no message had a parent (inactive here only so that the
    # constraint, which did not exist then, lets them be saved).
    for role, text in [("user", "Q1"), ("assistant", "A1"), ("user", "Q2")]:
        Message.objects.create(session=session, role=role, content=text, active=False)

    migration.link_linear_conversations(apps, None)
    Message.objects.filter(session=session).update(active=True)

    assert _shown(session) == ["Q1", "A1", "Q2"]
