"""The clinician's journey in a real Chromium, against `medserver -m demo`."""

from __future__ import annotations

import re

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.support.browser import ASSISTANT

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(fresh_server):
    """A server nobody has used yet: the first-run setup page is there to visit."""
    return fresh_server


def test_first_visitor_creates_the_admin_then_chats_and_the_answer_survives_reload(
    server, page, tmp_path
):
    page.goto(server.url + "/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))

    page.goto(server.setup_link())
    page.get_by_label("Username").fill("dr-grey")
    page.get_by_label("Password", exact=True).fill("a-long-passphrase")
    page.get_by_label("Password confirmation").fill("a-long-passphrase")
    page.get_by_role("button", name="Create administrator").click()
    expect(page).to_have_url(re.compile(r"/chat/[0-9a-f-]{36}/$"))
    expect(page.locator("#engine-status")).to_have_attribute("data-state", "ready")

    composer = page.get_by_label("Message")
    composer.fill("Differential for acute chest pain?")
    page.get_by_role("button", name="Send").click()

    question = page.locator('[data-message-role="user"]')
    expect(question).to_contain_text("Differential for acute chest pain?")
    expect(composer).to_have_value("")
    answer = page.locator(ASSISTANT)
    expect(answer).to_have_attribute("data-status", "complete", timeout=30_000)
    answer_text = answer.locator(".message-content").inner_text()
    assert answer_text.strip()
    page.screenshot(path=str(tmp_path / "chat.png"))

    page.reload()
    expect(page.locator("[data-message-id]")).to_have_count(2)
    expect(page.locator(ASSISTANT)).to_have_attribute("data-status", "complete")
    assert page.locator(f"{ASSISTANT} .message-content").inner_text() == answer_text
    expect(page.locator(".session-link.is-active")).to_contain_text("Differential for acute")


def test_enter_sends_and_an_empty_message_is_explained(server, page, tmp_path):
    server.create_user("dr-house")
    page.goto(server.url + "/accounts/login/")
    page.get_by_label("User name").fill("dr-house")
    page.get_by_label("Password").fill("a-long-passphrase")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/chat/"))

    page.get_by_role("button", name="Send").click()
    expect(page.locator("#composer-alert")).to_contain_text("Type a message")

    composer = page.get_by_label("Message")
    composer.fill("Sent with the Enter key")
    composer.press("Enter")
    expect(page.locator('[data-message-role="user"]').last).to_contain_text("Sent with the Enter")
    expect(page.locator(ASSISTANT).last).to_have_attribute(
        "data-status", "complete", timeout=30_000
    )
    expect(page.locator("#composer-alert")).to_be_empty()


def test_an_attached_image_is_sent_shown_and_answered(server, page, tmp_path):
    server.create_user("dr-quinn")
    image = tmp_path / "chest-xray.png"
    Image.new("L", (512, 512), color=70).save(image)
    page.goto(server.url + "/accounts/login/")
    page.get_by_label("User name").fill("dr-quinn")
    page.get_by_label("Password").fill("a-long-passphrase")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/chat/"))

    page.locator("#image-input").set_input_files(str(image))
    expect(page.locator(".pending-attachment")).to_have_count(1)
    page.get_by_label("Message").fill("Describe this radiograph.")
    page.get_by_role("button", name="Send").click()

    thumb = page.locator('[data-message-role="user"] img.message-thumb')
    expect(thumb).to_have_count(1)
    expect(page.locator(".pending-attachment")).to_have_count(0)
    assert thumb.evaluate("img => img.complete && img.naturalWidth") == 512
    expect(page.locator(ASSISTANT)).to_have_attribute("data-status", "complete", timeout=30_000)
