"""The chat page's actions and widgets through Django's test client.

Message actions (switch version, delete, edit form), sessions (list, search,
rename, delete), settings, the thinking switch, the status widget, and the
markup rules the page keeps (no inline scripts or styles).
"""

from __future__ import annotations

import re

import pytest

from chat import selectors, services
from chat.models import ChatSession
from inference.engine import Finished
from tests.chat.conversation import exchange
from tests.chat.test_pages import _Page

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def session(user) -> ChatSession:
    return services.session_create(owner=user, model_name="MedGemma demo")


@pytest.fixture
def signed_in(client, user, engine):
    client.force_login(user)
    return client


def _url(session, message=None, action="") -> str:
    base = f"/chat/{session.pk}/"
    return base + (f"messages/{message.pk}/" if message else "") + (f"{action}/" if action else "")


# --- the page's markup


def test_the_page_has_no_inline_script_or_style_attribute(signed_in, session):
    exchange(session, "Table?", "| a | b |\n|:-:|--:|\n| 1 | 2 |")

    html = signed_in.get(_url(session)).content.decode()
    page = _Page(html)

    scripts = page.find("script")
    assert scripts and all(script.get("src", "").startswith("/static/") for script in scripts)
    assert [tag for tag, attrs in page.tags if "style" in attrs] == []
    assert not re.search(r"\shx-on[:-]", html), "hx-on runs code from attributes"


def test_each_message_offers_its_actions_by_name(signed_in, session):
    exchange(session)

    page = _Page(signed_in.get(_url(session)).content.decode())

    names = {page.accessible_name(button) for button in page.find("button")}
    assert {"Edit question", "Delete question", "Copy answer", "Regenerate answer"} <= names
    assert {"Delete answer", "Send", "Stop", "Attach images", "Chat settings"} <= names


def test_a_failed_answer_says_why_and_offers_retry(signed_in, session):
    _, answer = services.message_send(session=session, content="Q")
    services.answer_fail(answer.pk, content="", thinking="", error="The model ran out of memory.")

    html = signed_in.get(_url(session)).content.decode()

    assert 'data-status="error"' in html
    assert "The model ran out of memory." in html
    assert f'hx-vals=\'{{"action": "regenerate", "message_id": "{answer.pk}"}}\'' in html
    assert ">Retry</button>" in html


def test_a_finished_thinking_trace_says_how_long_it_took(signed_in, session):
    _, answer = services.message_send(session=session, content="Q")
    services.answer_finish(
        answer.pk,
        content="Answer",
        thinking="Step **one**",
        finished=Finished("stop", 10, 5, 0.1, 0.5),
        engine="transformers",
        thinking_ms=4200,
    )

    html = signed_in.get(_url(session)).content.decode()

    assert "Thought for 4 s" in html
    assert "Step <strong>one</strong>" in html
    assert re.search(r'<details class="thinking">', html)  # closed until opened


# --- versions and deletion


def test_switching_version_answers_with_the_conversation(signed_in, session):
    _, first = exchange(session, "Q", "First")
    second = services.answer_regenerate(answer=first)
    services.answer_fail(second.pk, content="Second", thinking="", error="x")

    response = signed_in.post(_url(session, first, "select"), **HTMX)

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="conversation"')
    assert f'data-message-id="{first.pk}"' in html and f'data-message-id="{second.pk}"' not in html
    assert ">1 / 2<" in html
    assert [m.pk for m in selectors.active_path(session)][-1] == first.pk


def test_delete_answers_with_the_conversation_and_a_notice(signed_in, session):
    exchange(session, "Q1")
    question, _ = exchange(session, "Q2")

    response = signed_in.post(_url(session, question, "delete"), **HTMX)

    html = response.content.decode()
    assert "Q2" not in html.split('id="toasts"')[0]
    assert "Message deleted." in html
    assert session.messages.count() == 2


def test_a_refused_delete_changes_nothing_and_says_why(signed_in, session):
    question, _ = exchange(session)
    services.message_send(session=session, content="Streaming now")

    response = signed_in.post(_url(session, question, "delete"), **HTMX)

    assert response["HX-Reswap"] == "none"
    assert "still being written" in response.content.decode()
    assert session.messages.count() == 4


def test_another_users_message_cannot_be_touched(client, other_user, session, engine):
    question, _ = exchange(session)
    client.force_login(other_user)

    for action in ("select", "delete"):
        assert client.post(_url(session, question, action), **HTMX).status_code == 404
    assert client.get(_url(session, question, "edit")).status_code == 404
    assert session.messages.count() == 2


def test_the_edit_form_is_sent_over_the_socket_and_cancel_brings_the_message_back(
    signed_in, session
):
    question, _ = exchange(session, "Original question")

    form = _Page(signed_in.get(_url(session, question, "edit")).content.decode())
    restored = signed_in.get(_url(session, question)).content.decode()

    (edit,) = form.find("form")
    assert "ws-send" in edit
    (text,) = form.find("textarea", name="text")
    assert form.accessible_name(text) == "Edit your question"
    assert form.find("input", name="action")[0]["value"] == "edit"
    assert f'id="message-{question.pk}"' in restored and "Original question" in restored


# --- sessions


def test_search_lists_only_matching_chats(signed_in, session, user):
    exchange(session, "Hyperkalaemia ECG changes")
    other = services.session_create(owner=user, model_name="m")
    exchange(other, "Asthma plan")

    page = _Page(
        signed_in.get("/chat/sessions/", {"q": "ecg", "current": session.pk}).content.decode()
    )

    links = [a["href"] for a in page.find("a") if "session-link" in a.get("class", "")]
    assert links == [f"/chat/{session.pk}/"]
    empty = signed_in.get("/chat/sessions/", {"q": "nothing like this"}).content.decode()
    assert "No chat mentions" in empty


def test_rename_form_then_saved_title(signed_in, session):
    form = _Page(signed_in.get(_url(session, action="rename")).content.decode())
    (title,) = form.find("input", name="title")
    assert form.accessible_name(title) == "Chat title"

    response = signed_in.post(
        _url(session, action="rename"), {"title": "Sepsis case", "current": session.pk}, **HTMX
    )

    html = response.content.decode()
    assert "Sepsis case" in html and 'id="topbar-title" hx-swap-oob="true"' in html
    assert "Chat renamed." in html
    session.refresh_from_db()
    assert session.title == "Sepsis case"


def test_an_empty_title_is_refused_in_the_form(signed_in, session):
    response = signed_in.post(_url(session, action="rename"), {"title": " "}, **HTMX)

    assert "Give the chat a title." in response.content.decode()
    session.refresh_from_db()
    assert session.title == ""


def test_deleting_another_chat_removes_its_entry_and_the_chat_on_show_goes_home(
    signed_in, session, user
):
    other = services.session_create(owner=user, model_name="m")

    response = signed_in.post(_url(other, action="delete"), {"current": session.pk}, **HTMX)
    assert "Chat deleted." in response.content.decode()
    assert "HX-Redirect" not in response

    response = signed_in.post(_url(session, action="delete"), {"current": session.pk}, **HTMX)
    assert response["HX-Redirect"] == "/"
    assert not ChatSession.objects.filter(owner=user).exists()
    # A stale page names a chat that is gone: it goes home too.
    gone = signed_in.post(_url(other, action="delete"), {"current": "not-a-chat"}, **HTMX)
    assert gone.status_code == 404


def test_another_users_chat_cannot_be_renamed_or_deleted(client, other_user, session, engine):
    client.force_login(other_user)

    assert client.post(_url(session, action="rename"), {"title": "Mine"}).status_code == 404
    assert client.post(_url(session, action="delete")).status_code == 404
    assert ChatSession.objects.filter(pk=session.pk, title="").exists()


# --- settings and the thinking switch


def test_settings_are_saved_and_the_dialog_told_to_close(signed_in, session):
    data = {"system_prompt": "Be brief.", "temperature": "0.7", "top_p": "", "max_new_tokens": "64"}

    response = signed_in.post(_url(session, action="settings"), data, **HTMX)

    html = response.content.decode()
    assert "data-saved" in html and "Settings saved." in html
    session.refresh_from_db()
    assert (session.system_prompt, session.temperature, session.top_p) == ("Be brief.", 0.7, None)
    assert session.max_new_tokens == 64


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("temperature", "3", "Temperature must be from 0 to 2."),
        ("temperature", "warm", "Temperature: Enter a number."),
        ("max_new_tokens", "1.5", "Max tokens: Enter a whole number."),
    ],
)
def test_settings_out_of_bounds_are_refused_in_the_dialog(signed_in, session, field, value, error):
    response = signed_in.post(_url(session, action="settings"), {field: value}, **HTMX)

    html = response.content.decode()
    assert error in html and "data-saved" not in html
    session.refresh_from_db()
    assert (session.temperature, session.max_new_tokens) == (None, None)


def test_locked_sampling_is_shown_but_cannot_be_changed(signed_in, session, medserver_settings):
    medserver_settings(allow_client_sampling_config=False, default_temperature=0.3)

    page = _Page(signed_in.get(_url(session)).content.decode())

    (fieldset,) = page.find("fieldset")
    assert "disabled" in fieldset
    (temperature,) = page.find("input", name="temperature")
    assert temperature["value"] == "0.3"
    html = signed_in.get(_url(session)).content.decode()
    assert "Temperature and top-p are set by this server" in html


def test_the_thinking_switch_is_saved(signed_in, session):
    response = signed_in.post(_url(session, action="thinking"), {}, **HTMX)

    assert "Thinking off for this chat." in response.content.decode()
    session.refresh_from_db()
    assert session.thinking is False
    signed_in.post(_url(session, action="thinking"), {"thinking": "on"}, **HTMX)
    session.refresh_from_db()
    assert session.thinking is True


def test_the_thinking_switch_shows_only_for_models_that_think(
    signed_in, session, medserver_settings
):
    assert _Page(signed_in.get(_url(session)).content.decode()).find("input", role="switch")

    medserver_settings(model="4")  # MedGemma 1.5 4B does not think aloud

    assert not _Page(signed_in.get(_url(session)).content.decode()).find("input", role="switch")


# --- the status widget


def test_the_status_widget_is_polled_from_a_page_view(signed_in, session, engine):
    page = _Page(signed_in.get(_url(session)).content.decode())
    (poller,) = [a for _, a in page.tags if a.get("hx-get") == "/chat/status/"]
    assert poller["hx-trigger"].startswith("every ")

    html = signed_in.get("/chat/status/").content.decode()

    assert 'id="engine-status" data-state="ready" hx-swap-oob="true"' in html
    assert "Transformers" in html and engine.state.model in html
    assert "0 waiting" in html
    assert "GPU" not in html  # hardware facts only with --show-hardware-stats


def test_hardware_facts_show_with_show_hardware_stats(signed_in, medserver_settings):
    medserver_settings(show_hardware_stats=True)

    html = signed_in.get("/chat/status/").content.decode()

    # This machine may or may not have an NVIDIA GPU; either way it says which.
    assert "None found: running on the CPU" in html or "GB</dd>" in html
