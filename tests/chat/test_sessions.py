"""Sessions: rename, delete, search, and each chat's own settings within the server's bounds."""

from __future__ import annotations

import pytest

from chat import answers, generation_settings, selectors, services
from chat.errors import Rejected
from chat.generation_settings import THINKING_BUDGET_FACTOR
from chat.models import ChatSession, Message
from inference.engine import ChatTurn
from tests.chat.conversation import exchange

pytestmark = pytest.mark.django_db


@pytest.fixture
def session(user) -> ChatSession:
    return services.session_create(owner=user, model_name="MedGemma demo")


def _configure(session, **changes):
    values = {"system_prompt": "", "temperature": None, "top_p": None, "max_new_tokens": None}
    return services.session_configure(session=session, **{**values, **changes})


# --- rename


def test_rename_sets_the_title_without_moving_the_chat_in_the_list(session, user):
    newer = services.session_create(owner=user, model_name="m")
    exchange(newer, "Later chat")

    services.session_rename(session=session, title="  Sepsis   bundle ")

    session.refresh_from_db()
    assert session.title == "Sepsis bundle"
    assert list(selectors.sessions_for(user)) == [newer, session]


@pytest.mark.parametrize(("title", "error"), [("   ", "Give the chat a title"), ("x" * 201, "200")])
def test_rename_refuses_an_empty_or_too_long_title(session, title, error):
    with pytest.raises(Rejected, match=error):
        services.session_rename(session=session, title=title)
    session.refresh_from_db()
    assert session.title == ""


# --- delete


def test_delete_removes_the_session_and_its_messages(session, user):
    exchange(session, "Q")
    kept = services.session_create(owner=user, model_name="m")

    services.session_delete(session=session)

    assert list(ChatSession.objects.all()) == [kept]
    assert not Message.objects.exists()


def test_delete_is_refused_while_an_answer_is_being_written(session):
    services.message_send(session=session, content="Q")
    with pytest.raises(Rejected, match="still being written"):
        services.session_delete(session=session)
    assert ChatSession.objects.filter(pk=session.pk).exists()


# --- search


def test_search_finds_sessions_by_title_and_by_any_message(user, other_user):
    by_title = services.session_create(owner=user, model_name="m")
    services.session_rename(session=by_title, title="Warfarin bridging")
    by_message = services.session_create(owner=user, model_name="m")
    exchange(by_message, "INR of 5.2 on warfarin, no bleeding")
    unrelated = services.session_create(owner=user, model_name="m")
    exchange(unrelated, "Asthma plan")
    theirs = services.session_create(owner=other_user, model_name="m")
    services.session_rename(session=theirs, title="Warfarin too")

    found = list(selectors.sessions_search(user, "WARFARIN"))

    assert set(found) == {by_title, by_message}
    assert found == sorted(found, key=lambda s: s.updated_at, reverse=True)


def test_search_with_no_words_lists_every_session_once(user, session):
    other = services.session_create(owner=user, model_name="m")
    exchange(other, "one")
    exchange(other, "two")

    assert list(selectors.sessions_search(user, "  ")) == [other, session]
    assert list(selectors.sessions_search(user, "o")).count(other) == 1


# --- settings within the server's bounds


def test_settings_are_saved_and_applied_to_the_next_answer(session, medserver_settings):
    _configure(
        session,
        system_prompt="  You assist an emergency physician. ",
        temperature=0.8,
        top_p=0.5,
        max_new_tokens=300,
    )
    _, answer = services.message_send(session=session, content="Chest pain?")

    request = answers.request_for(answer)

    assert request.turns[0] == ChatTurn("system", "You assist an emergency physician.")
    assert request.turns[1] == ChatTurn("user", "Chest pain?")
    assert (request.sampling.temperature, request.sampling.top_p) == (0.8, 0.5)
    # Thinking is on (the demo model can think): the trace gets a budget of its own.
    assert request.sampling.max_new_tokens == 300 * THINKING_BUDGET_FACTOR


def test_empty_settings_mean_the_servers_defaults(session, medserver_settings):
    config = medserver_settings(default_temperature=0.2, default_top_p=0.9, max_new_tokens=40)
    _, answer = services.message_send(session=session, content="Q")

    request = answers.request_for(answer)

    assert request.turns == (ChatTurn("user", "Q"),)  # no system turn
    assert request.sampling.temperature == config.default_temperature
    assert request.sampling.top_p == config.default_top_p
    # Thinking is on (the demo model can think): the trace gets a budget of its own.
    assert request.sampling.max_new_tokens == 40 * THINKING_BUDGET_FACTOR


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"temperature": -0.1}, "Temperature must be from 0 to 2"),
        ({"temperature": 2.01}, "Temperature must be from 0 to 2"),
        ({"top_p": 0.0}, "Top-p must be above 0"),
        ({"top_p": 1.5}, "Top-p must be above 0"),
        ({"max_new_tokens": 0}, "Max tokens must be from 1"),
        ({"max_new_tokens": 8193}, "8,192"),
    ],
)
def test_settings_outside_the_bounds_are_refused_and_nothing_changes(session, change, error):
    _configure(session, temperature=0.5)
    with pytest.raises(Rejected, match=error):
        _configure(session, system_prompt="New prompt", **change)
    session.refresh_from_db()
    assert (session.system_prompt, session.temperature) == ("", 0.5)


def test_the_bounds_are_inclusive(session):
    for temperature, top_p, max_new_tokens in [(2.0, 1.0, 8192), (0.0, 0.01, 1)]:
        _configure(session, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens)
        session.refresh_from_db()
        assert (session.temperature, session.top_p, session.max_new_tokens) == (
            temperature,
            top_p,
            max_new_tokens,
        )


def test_a_system_prompt_over_the_text_limit_is_refused(session, medserver_settings):
    medserver_settings(max_text_length=20)
    with pytest.raises(Rejected, match="limit is 20"):
        _configure(session, system_prompt="x" * 21)


def test_locked_sampling_cannot_be_set_and_is_not_applied(session, medserver_settings):
    _configure(session, temperature=1.5, top_p=0.4)
    config = medserver_settings(allow_client_sampling_config=False, default_temperature=0.1)

    with pytest.raises(Rejected, match="This server sets temperature and top-p"):
        _configure(session, temperature=0.9)
    _configure(session, system_prompt="Be brief.", max_new_tokens=50)  # the rest still can
    _, answer = services.message_send(session=session, content="Q")
    request = answers.request_for(answer)

    assert (request.sampling.temperature, request.sampling.top_p) == (
        config.default_temperature,
        config.default_top_p,
    )
    # Thinking is on (the demo model can think): the trace gets a budget of its own.
    assert request.sampling.max_new_tokens == 50 * THINKING_BUDGET_FACTOR
    assert request.turns[0] == ChatTurn("system", "Be brief.")
    assert generation_settings.bounds().sampling_locked


# --- thinking


def test_thinking_follows_the_session_switch_as_it_is_now(session):
    services.session_set_thinking(session=session, thinking=False)
    _, answer = services.message_send(session=session, content="Q")
    assert answers.request_for(answer).thinking is False

    # The answer's session object is stale; the request reads the switch afresh.
    services.session_set_thinking(session=ChatSession.objects.get(pk=session.pk), thinking=True)
    assert answers.request_for(answer).thinking is True


def test_a_model_that_cannot_think_is_never_asked_to(session, medserver_settings):
    medserver_settings(model="4")  # MedGemma 1.5 4B does not think aloud
    _, answer = services.message_send(session=session, content="Q")

    assert session.thinking
    assert answers.request_for(answer).thinking is False
    assert not generation_settings.can_think()
