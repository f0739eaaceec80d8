"""The idle sign-out in a real Chromium: warned, the chat taken off the screen, nothing lost."""

from __future__ import annotations

import re

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.support.browser import PASSWORD, USER, sign_in
from tests.support.server import start_server

pytestmark = pytest.mark.browser

HISTORY = "58M, 2 h of crushing chest pain, diaphoretic, BP 90/60. ECG pending."
# 24 seconds: each wait for the warning or the sign-out takes 12 s, not the 30 s of a
# one-minute timeout (the page's words for a whole minute: tests/site/test_idle_sign_out.py).
TIMEOUT_MINUTES = "0.4"


@pytest.fixture(scope="module")
def idle_server(tmp_path_factory):
    running = start_server(
        tmp_path_factory.mktemp("idle-data"), "--session-timeout", TIMEOUT_MINUTES
    )
    yield running
    running.stop()


def test_idle_sign_out_warns_blanks_the_chat_and_gives_the_draft_back(idle_server, page, tmp_path):
    idle_server.create_user("dr-idle")
    sign_in(page, idle_server, "dr-idle")
    composer = page.get_by_label("Message")
    expect(composer).to_be_focused()  # signed in: ready to type
    composer.fill(HISTORY)
    film = tmp_path / "ecg.png"
    Image.new("RGB", (64, 48), (200, 40, 40)).save(film)
    page.locator("#image-input").set_input_files(str(film))
    expect(page.locator("#pending-attachments .pending-attachment")).to_have_count(1)

    # A timeout under two minutes is warned of half-way: 12 s before the sign-out.
    warning = page.get_by_role("alertdialog")
    expect(warning).to_be_visible(timeout=45_000)
    expect(warning).to_contain_text(re.compile(r"Signing out in \d+ s"))
    # Activity in another tab of the same sign-in counts: the server's clock says so.
    other = page.context.new_page()
    other.goto(page.url)
    other.close()
    expect(warning).to_be_hidden(timeout=8_000)

    expect(warning).to_be_visible(timeout=45_000)
    warning.get_by_role("button", name="Stay signed in").click()
    expect(warning).to_be_hidden()

    # Left alone: warned again, then the chat leaves the screen for a sign-in card.
    expect(warning).to_be_visible(timeout=45_000)
    card = page.get_by_role("heading", name="Signed out")
    expect(card).to_be_visible(timeout=45_000)
    expect(page.locator("#composer-input, #messages, #sidebar")).to_have_count(0)
    assert HISTORY not in page.content()
    expect(page.get_by_text("signed out after 24 seconds without activity")).to_be_visible()

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/chat/[0-9a-f-]{36}/$"))
    expect(page.get_by_label("Message")).to_have_value(HISTORY)
    expect(page.locator("#pending-attachments .pending-attachment")).to_have_count(1)

    # Nothing was lost: the question goes with its image.
    expect(page.locator("body")).to_have_attribute("data-socket", "open")
    page.get_by_role("button", name="Send").click()
    question = page.locator(USER)
    expect(question).to_have_count(1)
    expect(question.locator(".message-content")).to_have_text(HISTORY)
    expect(question.locator("img.message-thumb")).to_have_count(1)


def test_a_page_opened_after_the_timeout_says_why_it_asks_to_sign_in(idle_server, page):
    page.goto(idle_server.url + "/accounts/login/?next=/&reason=idle")
    expect(page.locator("#signed-out-notice")).to_contain_text("without activity")
    page.goto(idle_server.url + "/accounts/login/")
    expect(page.locator("#signed-out-notice")).to_have_count(0)
