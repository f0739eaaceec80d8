"""A shared ward computer: after a clinician signs out, Chromium's cache holds none
of their chat pages or images for the next user to find."""

from __future__ import annotations

from PIL import Image
from playwright.sync_api import expect

from tests.e2e.chromium import (  # noqa: F401
    ASSISTANT,
    browser_fixture,
    create_user,
    page_fixture,
    sign_in,
)

# Asks the browser's cache alone; a resource it does not hold is a network error.
FROM_CACHE_ONLY = """url => fetch(url, {cache: "only-if-cached", mode: "same-origin"})
    .then(response => response.status, () => "not cached")"""


def test_after_sign_out_the_cache_holds_no_image_or_page_of_the_chat(server, page, tmp_path):
    create_user(server, "dr-shared")
    image = tmp_path / "Kowalczyk_Wieslawa.png"
    Image.new("L", (256, 256), color=90).save(image)
    sign_in(page, server, "dr-shared")
    chat_url = page.url
    page.locator("#image-input").set_input_files(str(image))
    expect(page.locator(".pending-attachment")).to_have_count(1)
    page.get_by_label("Message").fill("Describe this radiograph.")
    page.get_by_role("button", name="Send").click()
    thumb = page.locator('[data-message-role="user"] img.message-thumb')
    expect(thumb).to_have_count(1)
    assert thumb.evaluate("img => img.complete && img.naturalWidth") == 256
    expect(page.locator(ASSISTANT)).to_have_attribute("data-status", "complete", timeout=30_000)
    image_url = thumb.evaluate("img => img.src")
    page.reload()  # the page and its image fetched once more, as a clinician would
    expect(page.locator('[data-message-role="user"] img.message-thumb')).to_have_count(1)

    page.locator(".logout-form button").click()
    expect(page).to_have_url(f"{server.url}/accounts/login/")

    assert page.evaluate(FROM_CACHE_ONLY, image_url) == "not cached"
    assert page.evaluate(FROM_CACHE_ONLY, chat_url) == "not cached"
