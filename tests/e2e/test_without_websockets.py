"""A network that blocks WebSockets: the page still sends and shows the answer."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support.browser import ASSISTANT, PASSWORD, open_page

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(busy_server):
    """The shared server with the rate budget raised (tests/e2e/conftest.py), and dr-proxy."""
    running = busy_server
    running.manage(
        "createsuperuser",
        "--noinput",
        "--username",
        "dr-proxy",
        "--email",
        "proxy@clinic.example",
        DJANGO_SUPERUSER_PASSWORD=PASSWORD,
    )
    return running


def test_blocked_websockets_fall_back_to_posting_and_polling(server, browser):
    page, watch = open_page(browser)
    # Every chat socket is refused, as by a proxy without WebSocket upgrade.
    page.route_web_socket(re.compile(r".*/ws/chat/.*"), lambda socket: socket.close())
    page.goto(server.url + "/accounts/login/")
    page.get_by_label("User name").fill("dr-proxy")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/chat/"))
    expect(page.locator("#connection-state")).to_contain_text("No live connection", timeout=15_000)
    page.wait_for_timeout(2_500)  # the socket is tried again meanwhile: the page still says so
    expect(page.locator("#connection-state")).to_contain_text("No live connection")

    page.get_by_label("Message").fill("Sent without a socket")
    page.get_by_role("button", name="Send").click()
    expect(page.locator('[data-message-role="user"]')).to_contain_text("Sent without a socket")
    expect(page.get_by_label("Message")).to_have_value("")
    expect(page.locator(ASSISTANT)).to_have_attribute("data-status", "complete", timeout=30_000)
    answer = page.locator(f"{ASSISTANT} .message-content").inner_text()
    assert answer.strip()

    page.reload()
    expect(page.locator(f"{ASSISTANT} .message-content")).to_have_text(answer)
    assert watch.errors == []
    page.context.close()
