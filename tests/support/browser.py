"""Debian's Chromium driven by Playwright, for the browser tests.

Every page opened with `open_page` records the requests it makes; the `page`
fixture (tests/e2e/conftest.py) fails the test if any went to a host other
than the server's own loopback address, if the page threw a JavaScript error,
or if the Content-Security-Policy blocked anything.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

from playwright.sync_api import Browser, Page, Playwright, expect

from tests.support.server import PASSWORD

CHROMIUM = os.environ.get("MEDSERVER_TEST_CHROMIUM", "/usr/bin/chromium")
ASSISTANT = '[data-message-role="assistant"]'
USER = '[data-message-role="user"]'


def launch(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless, as the tests run it (no sandbox or GPU in a
    container; no background requests of its own to other hosts)."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )


class PageWatch:
    """What a page did that a test may check afterwards."""

    def __init__(self, page: Page) -> None:
        self.urls: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda request: self.urls.append(request.url))
        page.on("websocket", lambda socket: self.urls.append(socket.url))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        # Anything the Content-Security-Policy blocked would silently not work.
        page.on("console", self._note_blocked)

    def _note_blocked(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.errors.append(message.text)

    def foreign_requests(self) -> list[str]:
        """Requests to anything but 127.0.0.1 (data: and blob: URLs stay in the page)."""
        return [
            url
            for url in self.urls
            if urlsplit(url).scheme not in ("data", "blob")
            and urlsplit(url).hostname != "127.0.0.1"
        ]


def open_page(browser, **context_options) -> tuple[Page, PageWatch]:
    context = browser.new_context(**{"viewport": {"width": 1280, "height": 800}, **context_options})
    page = context.new_page()
    return page, PageWatch(page)


def sign_in(page: Page, server, username: str) -> None:
    page.goto(server.url + "/accounts/login/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/chat/[0-9a-f-]{36}/$"))
    expect(page.locator("body")).to_have_attribute("data-socket", "open")


def send(page: Page, text: str, *, wait: bool = True) -> None:
    """Type `text` into the composer and send it; wait for the answer unless told not to."""
    answers = page.locator(ASSISTANT).count()
    page.get_by_label("Message").fill(text)
    page.get_by_role("button", name="Send").click()
    expect(page.locator(ASSISTANT)).to_have_count(answers + 1)
    if wait:
        expect(page.locator(ASSISTANT).last).not_to_have_attribute(
            "data-status", "streaming", timeout=30_000
        )
