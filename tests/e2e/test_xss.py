"""XSS payloads as messages, as a chat title and in a Markdown answer, in a real browser.

A live `medserver -m demo` serves the pages to Chromium. Every payload would
set `window.__xss`, change `document.title` to PWNED or open a dialog if it
ran; none may, and each is shown as the text it is. The `page` fixture also
fails the test if the Content-Security-Policy had to block anything.
"""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import USER, send, sign_in

pytestmark = pytest.mark.browser

RUN = "window.__xss=true;document.title='PWNED';alert('{0}')"
MESSAGE_PAYLOADS = [
    "<script>" + RUN.format("script") + "</script>",
    '<img src=x onerror="' + RUN.format("img") + '">',
    "[click me](javascript:" + RUN.format("link") + ")",
    '"><svg onload="' + RUN.format("svg") + '">',
    "</textarea><script>" + RUN.format("textarea") + "</script>",
]
TITLE_PAYLOAD = "\"><svg onload=alert('title')></title><script>window.__xss=true</script>"
MARKDOWN_ANSWER = "\n\n".join(
    [
        "[click me](javascript:window.__xss=true)",
        "[data link](data:text/html,<script>alert('data')</script>)",
        "<script>window.__xss=true</script>",
        "<img src=x onerror=\"alert('md-img')\">",
        "**bold** <a href=\"javascript:alert('raw')\">raw link</a>",
    ]
)


def watch_for_scripts(page: Page) -> list[str]:
    """Arm the page: `window.__xss` starts false and every dialog is recorded."""
    dialogs: list[str] = []

    def on_dialog(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.add_init_script("window.__xss = false;")
    return dialogs


def assert_no_script_ran(page: Page, dialogs: list[str]) -> None:
    assert page.evaluate("window.__xss") is False
    assert page.evaluate("document.title") != "PWNED"
    assert dialogs == []
    injected = "script:not([src]), [onerror], [onload], a[href^='javascript'], a[href^='data']"
    assert page.locator(f"#conversation {injected}, #session-list {injected}").count() == 0
    assert page.locator("img[src='x'], #conversation svg[onload]").count() == 0


def assert_messages_shown_as_text(page: Page) -> None:
    questions = page.locator(f"{USER} .message-content")
    expect(questions).to_have_count(len(MESSAGE_PAYLOADS))
    for index, payload in enumerate(MESSAGE_PAYLOADS):
        expect(questions.nth(index)).to_have_text(payload)


def test_payloads_in_messages_and_title_never_run(server, page):
    dialogs = watch_for_scripts(page)
    server.create_user("dr-xss")
    sign_in(page, server, "dr-xss")
    for payload in MESSAGE_PAYLOADS:
        send(page, payload)
    assert_messages_shown_as_text(page)
    assert_no_script_ran(page, dialogs)

    # The title, renamed in the page as a user would.
    item = page.locator(".session-item.is-active")
    item.get_by_role("button", name=re.compile("^Rename chat")).click()
    page.get_by_label("Chat title").fill(TITLE_PAYLOAD)
    page.get_by_label("Chat title").press("Enter")
    expect(page.locator(".session-item.is-active .session-title")).to_have_text(TITLE_PAYLOAD)
    expect(page.locator("#topbar-title")).to_have_text(TITLE_PAYLOAD)
    assert_no_script_ran(page, dialogs)

    # The same conversation and title, rendered by the server on a fresh load.
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-socket", "open")
    assert_messages_shown_as_text(page)
    expect(page.locator(".session-item.is-active .session-title")).to_have_text(TITLE_PAYLOAD)
    expect(page.locator("#topbar-title")).to_have_text(TITLE_PAYLOAD)
    assert page.title() == f"{TITLE_PAYLOAD} · MedServer"
    assert_no_script_ran(page, dialogs)

    # The question holding </textarea> goes back into the edit box whole.
    closer = page.locator(USER).nth(MESSAGE_PAYLOADS.index(MESSAGE_PAYLOADS[4]))
    closer.get_by_role("button", name="Edit question").click()
    expect(page.get_by_label("Edit your question")).to_have_value(MESSAGE_PAYLOADS[4])
    assert_no_script_ran(page, dialogs)


def test_markdown_answer_with_script_and_javascript_links_is_inert(server, page):
    """An answer (the model's Markdown, rendered to HTML) cannot carry script or bad links."""
    dialogs = watch_for_scripts(page)
    server.create_user("dr-md")
    seed = f"""
from django.contrib.auth.models import User
from chat import services
from chat.models import Message
owner = User.objects.get(username="dr-md")
session = services.session_create(owner=owner, model_name="demo")
services.session_rename(session=session, title="Markdown check")
_, answer = services.message_send(session=session, content="Links?", model_name="demo")
answers = Message.objects.filter(pk=answer.pk)
answers.update(content={json.dumps(MARKDOWN_ANSWER)}, status="complete")
print(session.pk)
"""
    session_id = server.manage("shell", "-c", seed).strip().splitlines()[-1]
    sign_in(page, server, "dr-md")
    page.goto(f"{server.url}/chat/{session_id}/")
    answer = page.locator('[data-message-role="assistant"] .message-content')
    expect(answer).to_contain_text("click me")
    expect(answer).to_contain_text("<script>window.__xss=true</script>")
    expect(answer).to_contain_text("raw link")
    assert answer.locator("a").count() == answer.locator("a[href^='http']").count()
    links = answer.get_by_text("click me")
    links.click()  # a link without a safe href does nothing
    assert_no_script_ran(page, dialogs)
