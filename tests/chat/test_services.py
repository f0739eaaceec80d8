"""Chat writes (services) and reads (selectors) against the real database."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from chat import selectors, services
from chat.errors import Rejected
from chat.models import Attachment, ChatSession, Message
from inference.engine import ChatTurn
from tests.chat.conversation import finish_answer

pytestmark = pytest.mark.django_db

MODEL = "MedGemma demo"


def _png(color=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (12, 8), color).save(out, format="PNG")
    return out.getvalue()


def _attachment(owner, name="scan.png") -> Attachment:
    return services.attachment_create(
        owner=owner, upload=SimpleUploadedFile(name, _png(), content_type="image/png")
    )


@pytest.fixture
def session(user) -> ChatSession:
    return services.session_create(owner=user, model_name=MODEL)


def _nothing_saved(session: ChatSession) -> None:
    session.refresh_from_db()
    assert Message.objects.filter(session=session).count() == 0
    assert session.title == ""


# --- message_send


def test_message_send_saves_question_and_streaming_placeholder(session, medserver_settings):
    medserver_settings()

    question, answer = services.message_send(
        session=session, content="  Chest pain for 2 hours.  ", model_name=MODEL
    )

    question.refresh_from_db()
    answer.refresh_from_db()
    assert (question.role, question.content, question.status) == (
        Message.Role.USER,
        "Chest pain for 2 hours.",
        Message.Status.COMPLETE,
    )
    assert (answer.role, answer.content, answer.status, answer.model_name) == (
        Message.Role.ASSISTANT,
        "",
        Message.Status.STREAMING,
        MODEL,
    )
    assert question.session == answer.session == session
    assert answer.pk > question.pk
    assert list(selectors.messages_for(session)) == [question, answer]


def test_first_message_gives_the_session_its_title(session):
    services.message_send(session=session, content="Chest pain\n  for two   hours")

    session.refresh_from_db()
    assert session.title == "Chest pain for two hours"


def test_long_first_message_is_truncated_with_an_ellipsis_for_the_title(session):
    text = "A 58-year-old man with crushing chest pain radiating to the left arm since noon"

    services.message_send(session=session, content=text)

    session.refresh_from_db()
    assert session.title.endswith("…")
    assert len(session.title) <= services.TITLE_LENGTH
    assert text.startswith(session.title[:-1])


def test_later_messages_keep_the_first_title(session):
    _, answer = services.message_send(session=session, content="First question")
    finish_answer(answer)

    services.message_send(session=session, content="Second question")

    session.refresh_from_db()
    assert session.title == "First question"


def test_image_only_message_is_titled_image_analysis(session, user):
    image = _attachment(user)

    services.message_send(session=session, content="", attachment_ids=[image.pk])

    session.refresh_from_db()
    assert session.title == "Image analysis"


def test_attachments_are_linked_to_the_question(session, user):
    first, second = _attachment(user), _attachment(user)

    question, answer = services.message_send(
        session=session, content="Compare these", attachment_ids=[first.pk, str(second.pk)]
    )

    assert {a.pk for a in question.attachments.all()} == {first.pk, second.pk}
    assert answer.attachments.count() == 0


@pytest.mark.parametrize("content", ["", "   \n\t "])
def test_empty_message_is_refused_and_nothing_saved(session, content):
    with pytest.raises(Rejected, match="Type a message or attach an image"):
        services.message_send(session=session, content=content)

    _nothing_saved(session)


def test_message_over_text_limit_is_refused_and_nothing_saved(session, medserver_settings):
    medserver_settings(max_text_length=10)

    with pytest.raises(Rejected) as refused:
        services.message_send(session=session, content="x" * 11)

    assert str(refused.value) == "The message is 11 characters long; the limit is 10."
    _nothing_saved(session)


def test_message_at_text_limit_is_accepted(session, medserver_settings):
    medserver_settings(max_text_length=10)

    question, _ = services.message_send(session=session, content="x" * 10)

    assert question.content == "x" * 10


def test_too_many_attachments_are_refused_and_stay_unlinked(session, user, medserver_settings):
    medserver_settings(max_image_count=2)
    images = [_attachment(user) for _ in range(3)]

    with pytest.raises(Rejected, match="3 images attached; at most 2"):
        services.message_send(
            session=session, content="Look", attachment_ids=[a.pk for a in images]
        )

    _nothing_saved(session)
    assert Attachment.objects.filter(message__isnull=True).count() == 3


def test_the_same_attachment_twice_counts_once(session, user, medserver_settings):
    medserver_settings(max_image_count=1)
    image = _attachment(user)

    question, _ = services.message_send(
        session=session, content="Look", attachment_ids=[image.pk, str(image.pk)]
    )

    assert list(question.attachments.all()) == [image]


def test_another_users_attachment_is_refused_and_nothing_saved(session, user, other_user):
    mine, theirs = _attachment(user), _attachment(other_user)

    with pytest.raises(Rejected, match="no longer available"):
        services.message_send(session=session, content="Look", attachment_ids=[mine.pk, theirs.pk])

    _nothing_saved(session)
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.message is None and theirs.message is None


def test_attachment_already_sent_cannot_be_sent_again(session, user):
    image = _attachment(user)
    _, answer = services.message_send(session=session, content="One", attachment_ids=[image.pk])
    finish_answer(answer)

    with pytest.raises(Rejected, match="no longer available"):
        services.message_send(session=session, content="Two", attachment_ids=[image.pk])

    assert session.messages.count() == 2


def test_unknown_attachment_id_is_refused(session):
    with pytest.raises(Rejected, match="no longer available"):
        services.message_send(session=session, content="Look", attachment_ids=[uuid.uuid4()])

    _nothing_saved(session)


def test_malformed_attachment_id_is_refused_and_nothing_saved(session):
    with pytest.raises(Rejected):
        services.message_send(session=session, content="Look", attachment_ids=["not-a-uuid"])

    _nothing_saved(session)


def test_send_while_an_answer_is_streaming_is_refused_and_nothing_saved(session):
    services.message_send(session=session, content="First")

    with pytest.raises(Rejected, match="still being written"):
        services.message_send(session=session, content="Second")

    assert session.messages.count() == 2
    assert not session.messages.filter(content="Second").exists()


def test_send_after_the_answer_finished_is_accepted(session):
    _, answer = services.message_send(session=session, content="First")
    finish_answer(answer)

    services.message_send(session=session, content="Second")

    assert session.messages.count() == 4


def test_streaming_answer_in_another_session_does_not_block(user, session):
    other = services.session_create(owner=user, model_name=MODEL)
    services.message_send(session=other, content="Elsewhere")

    question, _ = services.message_send(session=session, content="Here")

    assert question.session == session


# --- the end of an answer


def test_answer_finish_saves_text_timings_and_completes(session):
    _, answer = services.message_send(session=session, content="Q")

    finish_answer(answer, content="Pneumonia.", thinking="Fever, cough.")

    answer.refresh_from_db()
    assert answer.status == Message.Status.COMPLETE
    assert (answer.content, answer.thinking, answer.engine) == (
        "Pneumonia.",
        "Fever, cough.",
        "transformers",
    )
    assert (answer.prompt_tokens, answer.completion_tokens) == (50, 20)
    assert (answer.first_token_ms, answer.duration_ms) == (250, 1500)
    assert answer.completed_at is not None
    assert answer.tokens_per_second == pytest.approx(20 / 1.25)


def test_cancelled_answer_is_saved_as_stopped(session):
    _, answer = services.message_send(session=session, content="Q")

    finish_answer(answer, content="Partial", reason="cancelled")

    answer.refresh_from_db()
    assert (answer.status, answer.content) == (Message.Status.STOPPED, "Partial")


def test_answer_fail_saves_the_error_and_what_was_written(session):
    _, answer = services.message_send(session=session, content="Q")

    services.answer_fail(answer.pk, content="Half an", thinking="t", error="Engine crashed.")

    answer.refresh_from_db()
    assert (answer.status, answer.content, answer.thinking, answer.error) == (
        Message.Status.ERROR,
        "Half an",
        "t",
        "Engine crashed.",
    )
    assert answer.completed_at is not None


def test_progress_is_saved_only_while_streaming(session):
    _, answer = services.message_send(session=session, content="Q")

    services.answer_save_progress(answer.pk, content="So far", thinking="hmm")
    answer.refresh_from_db()
    assert (answer.content, answer.thinking) == ("So far", "hmm")

    finish_answer(answer, content="Final")
    services.answer_save_progress(answer.pk, content="Late write", thinking="")
    answer.refresh_from_db()
    assert answer.content == "Final"


def test_answers_left_streaming_are_marked_interrupted(session, user):
    _, streaming = services.message_send(session=session, content="Q")
    other = services.session_create(owner=user, model_name=MODEL)
    _, done = services.message_send(session=other, content="Q")
    finish_answer(done)

    assert services.answers_mark_interrupted() == 1

    streaming.refresh_from_db()
    done.refresh_from_db()
    assert streaming.status == Message.Status.ERROR
    assert streaming.error == services.INTERRUPTED
    assert streaming.completed_at is not None
    assert done.status == Message.Status.COMPLETE
    assert services.answers_mark_interrupted() == 0


# --- what the model is shown


def test_conversation_before_lists_turns_oldest_first(session):
    _, a1 = services.message_send(session=session, content="Q1")
    finish_answer(a1, content="A1", thinking="secret reasoning")
    _, a2 = services.message_send(session=session, content="Q2")

    assert selectors.conversation_before(a2) == (
        ChatTurn("user", "Q1"),
        ChatTurn("assistant", "A1"),
        ChatTurn("user", "Q2"),
    )
    assert selectors.conversation_before(a1) == (ChatTurn("user", "Q1"),)


def test_conversation_before_skips_failed_empty_answers_and_merges_user_turns(session):
    _, failed = services.message_send(session=session, content="Q1")
    services.answer_fail(failed.pk, content="", thinking="", error="Engine crashed.")
    _, answer = services.message_send(session=session, content="Q1 again")

    assert selectors.conversation_before(answer) == (ChatTurn("user", "Q1\n\nQ1 again"),)


def test_conversation_before_keeps_a_failed_answer_that_wrote_something(session):
    _, failed = services.message_send(session=session, content="Q1")
    services.answer_fail(failed.pk, content="Partial text", thinking="", error="x")
    _, answer = services.message_send(session=session, content="Q2")

    assert [turn.role for turn in selectors.conversation_before(answer)] == [
        "user",
        "assistant",
        "user",
    ]


def test_conversation_before_includes_image_paths_of_each_user_turn(session, user):
    first, second = _attachment(user), _attachment(user)
    _, failed = services.message_send(session=session, content="", attachment_ids=[first.pk])
    services.answer_fail(failed.pk, content="", thinking="", error="x")
    _, answer = services.message_send(
        session=session, content="Compare", attachment_ids=[second.pk]
    )

    (turn,) = selectors.conversation_before(answer)

    assert turn.text == "Compare"
    assert turn.images == (Path(first.file.path), Path(second.file.path))
    assert all(path.is_file() for path in turn.images)


def test_conversation_before_ignores_other_sessions(session, user):
    other = services.session_create(owner=user, model_name=MODEL)
    _, elsewhere = services.message_send(session=other, content="Other chat")
    finish_answer(elsewhere)
    _, answer = services.message_send(session=session, content="This chat")

    assert selectors.conversation_before(answer) == (ChatTurn("user", "This chat"),)


# --- sessions


def test_session_start_reuses_the_newest_empty_session(user):
    first = services.session_for_new_chat(owner=user, model_name=MODEL)

    assert services.session_for_new_chat(owner=user, model_name=MODEL) == first
    assert ChatSession.objects.filter(owner=user).count() == 1


def test_session_start_opens_a_new_session_once_the_newest_has_messages(user):
    first = services.session_for_new_chat(owner=user, model_name=MODEL)
    services.message_send(session=first, content="Hello")

    second = services.session_for_new_chat(owner=user, model_name=MODEL)

    assert second != first
    assert second.model_name == MODEL
    assert list(selectors.sessions_for(user)) == [second, first]


def test_session_start_never_reuses_another_users_empty_session(user, other_user):
    theirs = services.session_for_new_chat(owner=other_user, model_name=MODEL)

    mine = services.session_for_new_chat(owner=user, model_name=MODEL)

    assert mine != theirs
    assert mine.owner == user


def test_sessions_for_lists_only_the_users_own_most_recent_first(user, other_user):
    older = services.session_create(owner=user, model_name=MODEL)
    newer = services.session_create(owner=user, model_name=MODEL)
    services.session_create(owner=other_user, model_name=MODEL)
    services.message_send(session=older, content="bump")  # activity moves it to the top

    assert list(selectors.sessions_for(user)) == [older, newer]


def test_session_for_never_returns_another_users_session(session, other_user):
    assert selectors.session_for(session.owner, session.pk) == session
    assert selectors.session_for(session.owner, str(session.pk)) == session

    with pytest.raises(ChatSession.DoesNotExist):
        selectors.session_for(other_user, session.pk)


def test_session_for_unknown_id_raises_does_not_exist(user):
    with pytest.raises(ChatSession.DoesNotExist):
        selectors.session_for(user, uuid.uuid4())


def test_attachments_for_never_returns_another_users_attachment(user, other_user):
    image = _attachment(user)

    assert selectors.attachments_for(user).get(pk=image.pk) == image
    with pytest.raises(Attachment.DoesNotExist):
        selectors.attachments_for(other_user).get(pk=image.pk)


# --- attachments


def test_attachment_create_stores_a_clean_image_under_a_random_name(user):
    image = _attachment(user, name="Doe_Jane_chest.png")

    image.refresh_from_db()
    assert image.owner == user
    assert image.message is None
    assert (image.content_type, image.width, image.height) == ("image/png", 12, 8)
    stored = Path(image.file.path)
    assert stored.is_file()
    assert stored.stat().st_size == image.size_bytes
    assert "Doe" not in image.file.name
    assert stored.suffix == ".png"


def test_attachment_create_refuses_a_non_image_and_stores_nothing(user, settings):
    upload = SimpleUploadedFile("notes.txt", b"not an image", content_type="image/png")

    with pytest.raises(Rejected, match="The file could not be read as an image"):
        services.attachment_create(owner=user, upload=upload)

    assert Attachment.objects.count() == 0
    media = Path(settings.MEDIA_ROOT)
    assert not media.exists() or not any(p.is_file() for p in media.rglob("*"))


def test_attachment_create_refuses_a_file_over_the_payload_limit(user, medserver_settings):
    medserver_settings(max_payload_mb=1)
    upload = SimpleUploadedFile("big.png", _png() + b"\0" * (1024 * 1024), content_type="image/png")

    with pytest.raises(Rejected, match="the limit is 1 MB"):
        services.attachment_create(owner=user, upload=upload)

    assert Attachment.objects.count() == 0


def test_an_answer_cut_off_by_the_loop_guard_is_stopped_with_the_reason(user):
    from chat.services.answer_saving import LOOP_NOTE

    session = services.session_create(owner=user, model_name="demo")
    _, answer = services.message_send(session=session, content="Go on")
    finish_answer(answer, "again again again", reason="repetition")
    assert answer.status == Message.Status.STOPPED and answer.error == LOOP_NOTE


def test_thinking_gets_a_token_budget_of_its_own(user, medserver_settings):
    from chat import generation_settings

    medserver_settings(max_new_tokens=100)
    session = services.session_create(owner=user, model_name="demo")
    session.thinking = False
    plain = generation_settings.sampling_for(session).max_new_tokens
    session.thinking = True  # the demo model can think
    assert generation_settings.sampling_for(session).max_new_tokens == 2 * plain
