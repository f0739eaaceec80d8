"""Fixtures of the end-to-end tests: a real `medserver -m demo` process (the
session's shared one, tests/conftest.py), and Debian's Chromium with pages that
watch what they load.

The server starter and the browser helpers behind them are plain modules in
tests/support/ (server.py, browser.py), which test modules import by name.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.support.browser import CHROMIUM, launch, open_page
from tests.support.server import start_server


@pytest.fixture(scope="module")
def server(demo_server):
    """`medserver -m demo` with the default flags: the session's shared one
    (tests/conftest.py). A module that needs other flags defines its own."""
    return demo_server


@pytest.fixture(scope="session")
def busy_server(tmp_path_factory):
    """`medserver -m demo` for the modules that drive the page hard, shared: greedy,
    the loop guard off (the random model soon repeats itself, and the tests that
    watch a long answer stream need it to go on), and the rate budget raised,
    since every test comes from 127.0.0.1."""
    running = start_server(
        tmp_path_factory.mktemp("busy-medserver"),
        "--loop-guard",
        "0",
        "--rate-limit",
        "1000/minute",
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def fresh_server(tmp_path_factory):
    """`medserver -m demo` of the module's own, that nobody has used yet: no account
    exists, so its one-time setup link still works."""
    running = start_server(tmp_path_factory.mktemp("fresh-medserver"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser():
    """Chromium, for the tests of one module (each test's page has a context of its
    own). Not one for the session: Playwright's sync API holds an event loop of its
    own while it runs, which the asyncio tests after the browser modules need not
    share; a launch costs a second or two."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `bash install.sh --dev` first")
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A page in a fresh context; the test fails if the page threw a JavaScript
    error, the Content-Security-Policy blocked anything, or any request left
    127.0.0.1."""
    page, watch = open_page(browser)
    page.watch = watch
    yield page
    page.context.close()
    assert watch.errors == [], f"JavaScript errors: {watch.errors}"
    assert watch.foreign_requests() == [], "requests left the machine"
