"""Presets, provenance and reviews in a real Chromium: what a clinician does with an answer."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from chat.disclaimer import CLINICAL_DISCLAIMER
from tests.support.browser import ASSISTANT, send, sign_in

pytestmark = pytest.mark.browser


def test_a_preset_is_chosen_the_answer_says_how_it_was_written_and_is_reviewed(server, page):
    server.create_user("dr-review")
    sign_in(page, server, "dr-review")

    page.get_by_role("button", name="Chat settings").click()
    dialog = page.locator("#settings-dialog")
    dialog.get_by_label("Task preset").select_option(label="Chest X-ray report")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#preset-chip")).to_have_text("Chest X-ray report")
    # On a phone the chip steps aside: the top bar's controls stay on screen.
    page.set_viewport_size({"width": 360, "height": 780})
    expect(page.get_by_role("button", name="Chat settings")).to_be_in_viewport(ratio=1)
    page.set_viewport_size({"width": 1280, "height": 800})

    send(page, "PA chest film, 64F, cough for 3 weeks.")
    answer = page.locator(ASSISTANT)

    answer.get_by_label("How this answer was written").click()
    facts = answer.locator(".provenance-facts")
    expect(facts).to_be_visible()
    expect(facts).to_contain_text("Chest X-ray report (version 1)")
    expect(facts).to_contain_text("Transformers")

    helpful = answer.get_by_role("button", name="Helpful", exact=True)
    helpful.click()
    expect(answer.get_by_role("button", name="Helpful", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )

    answer.locator(".review-details > summary").click()
    answer.get_by_label("Rejected: not to be relied on").check()
    answer.get_by_label("Comment").fill("Calls a normal hilum enlarged.")
    answer.get_by_role("button", name="Save review").click()
    expect(answer.locator(".review-summary")).to_contain_text("Rejected by dr-review")

    page.reload()
    answer = page.locator(ASSISTANT)
    expect(answer.locator(".answer-review")).to_have_attribute("data-verdict", "rejected")
    expect(answer.locator(".answer-review")).to_have_attribute("data-rating", "up")
    expect(page.locator("#preset-chip")).to_have_text("Chest X-ray report")


def test_what_is_copied_or_printed_carries_the_disclaimer(server, page):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    server.create_user("dr-copy")
    sign_in(page, server, "dr-copy")
    send(page, "Normal adult potassium range?")
    answer = page.locator(ASSISTANT)

    answer.get_by_role("button", name="Copy answer").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.endswith(CLINICAL_DISCLAIMER) and "Written by MedServer demo" in copied

    # Selected by hand and copied with the keyboard.
    question = page.locator('[data-message-role="user"] .message-content')
    question.select_text()
    page.keyboard.press("Control+C")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == f"Normal adult potassium range?\n\n— {CLINICAL_DISCLAIMER}"

    page.emulate_media(media="print")
    for where in ("::before", "::after"):
        content = page.locator("#messages").evaluate(f"m => getComputedStyle(m, '{where}').content")
        assert CLINICAL_DISCLAIMER in content
    expect(page.locator(".composer")).to_be_hidden()
    expect(answer.locator(".message-content")).to_be_visible()
