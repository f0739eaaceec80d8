"""axe-core on every page, in both themes: no critical or serious violation."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.accessibility import axe_violations
from tests.support.browser import ASSISTANT, send, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(fresh_server):
    """A server nobody has used yet: the first-run setup page is there to visit."""
    return fresh_server


THEMES = ("dark", "light")


def check(page, what: str, failures: list[str]) -> None:
    for theme in THEMES:
        page.emulate_media(color_scheme=theme)
        page.wait_for_timeout(300)  # colours are read after the switch, not during a transition
        failures += [f"{what} ({theme}) {line}" for line in axe_violations(page)]


def test_no_page_has_a_critical_or_serious_accessibility_violation(server, page):
    failures: list[str] = []
    page.emulate_media(reduced_motion="reduce")  # no transitions to wait out
    # Before any account exists: the first-run setup page.
    page.goto(server.setup_link())
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    check(page, "setup", failures)

    page.goto(server.url + "/accounts/login/")
    check(page, "login", failures)
    server.create_user("dr-axe")
    sign_in(page, server, "dr-axe")
    check(page, "chat (empty)", failures)
    send(page, "Dose of amoxicillin for otitis media?")
    answer = page.locator(ASSISTANT)
    answer.locator(".review-details > summary").click()
    answer.get_by_label("Rejected: not to be relied on").check()
    answer.get_by_role("button", name="Save review").click()
    expect(answer.locator(".rejected-banner")).to_be_visible()
    check(page, "chat (answered, rejected)", failures)
    page.get_by_role("button", name="Chat settings").click()
    expect(page.locator("#settings-dialog")).to_be_visible()
    check(page, "chat settings", failures)
    page.keyboard.press("Escape")

    page.set_viewport_size({"width": 360, "height": 780})
    check(page, "chat (phone)", failures)
    page.set_viewport_size({"width": 1280, "height": 800})

    page.goto(server.url + "/account/presets/")
    check(page, "presets", failures)
    page.goto(server.url + "/account/api-tokens/")
    page.get_by_label("What is it for?").fill("Radiology PACS")
    page.get_by_role("button", name="Create token").click()
    check(page, "API tokens", failures)

    page.goto(server.url + "/admin/")
    check(page, "admin", failures)
    page.goto(server.url + "/admin/reviews/answerreview/")
    check(page, "admin answer reviews", failures)
    page.goto(server.url + "/admin/chat/chatsession/")
    check(page, "admin sessions", failures)
    page.locator("#result_list tbody a").first.click()
    # The transcript as the clinician saw it, with nothing to edit.
    expect(page.get_by_role("heading", name="Transcript: Dose of amoxicillin")).to_be_visible()
    expect(page.locator(".transcript-rejected")).to_contain_text("REJECTED by dr-axe")
    expect(page.locator("#content-main").locator("input, textarea, select")).to_have_count(0)
    check(page, "admin session review", failures)
    assert failures == [], "\n".join(failures)
