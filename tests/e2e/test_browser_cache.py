"""A shared ward computer: after a clinician signs out, Chromium's cache on disk
holds none of their chat's images or pages for the next user to find."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image
from playwright.sync_api import expect, sync_playwright

from tests.support.browser import ASSISTANT, CHROMIUM, sign_in

QUESTION = "Describe this radiograph, case 7f3a9c."


def cache_holds(profile: Path, data: bytes) -> bool:
    """Whether the browser's HTTP cache (memory and disk) holds `data` on disk."""
    files = [p for p in (profile / "Default").glob("*Cache*/**/*") if p.is_file()]
    assert files, "no cache folder in the profile"
    return any(data in path.read_bytes() for path in files)


def test_after_sign_out_the_disk_cache_holds_no_image_or_page_of_the_chat(server, tmp_path):
    server.create_user("dr-shared")
    image = tmp_path / "Kowalczyk_Wieslawa.png"
    Image.new("L", (256, 256), color=90).save(image)
    profile = tmp_path / "profile"
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = context.new_page()
        sign_in(page, server, "dr-shared")
        page.locator("#image-input").set_input_files(str(image))
        expect(page.locator(".pending-attachment")).to_have_count(1)
        page.get_by_label("Message").fill(QUESTION)
        page.get_by_role("button", name="Send").click()
        thumb = page.locator('[data-message-role="user"] img.message-thumb')
        expect(thumb).to_have_count(1)
        assert thumb.evaluate("img => img.complete && img.naturalWidth") == 256
        expect(page.locator(ASSISTANT)).to_have_attribute("data-status", "complete", timeout=30_000)
        served = page.request.get(thumb.evaluate("img => img.src")).body()
        page.reload()  # the page and its image once more, as a clinician would
        expect(page.locator('[data-message-role="user"] img.message-thumb')).to_have_count(1)
        page.locator(".logout-form button").click()
        expect(page).to_have_url(re.compile(r"/accounts/login/"))
        context.close()  # the cache is written out

    assert len(served) > 200
    assert not cache_holds(profile, served[-200:]), "the image is in the browser's cache"
    assert not cache_holds(profile, QUESTION.encode()), "the chat page is in the browser's cache"
