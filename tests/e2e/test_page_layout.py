"""The page's layout and what a ChatGPT or Open WebUI user expects, in a real Chromium."""

from __future__ import annotations

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.support.browser import ASSISTANT, USER, send, sign_in

pytestmark = pytest.mark.browser

CODE = 'print("K+ 3.5-5.0 mmol/L")'
ANSWER_WITH_CODE = f"Run:\n\n```python\n{CODE}\n```\n"


def _box(locator) -> dict:
    return locator.bounding_box()


def test_code_blocks_copy_chats_group_by_date_and_search_shows_the_match(server, page):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    server.create_user("dr-code")
    sign_in(page, server, "dr-code")
    long_question = "List the causes of acute chest pain in adults under forty"
    send(page, long_question)
    # An answer with a code block, as a model that writes code would save it.
    server.manage(
        "shell",
        "-c",
        "from chat.models import Message; "
        "Message.objects.filter(role='assistant', session__owner__username='dr-code')"
        f".update(content={ANSWER_WITH_CODE!r})",
    )
    page.reload()
    code_copy = page.locator(ASSISTANT).get_by_role("button", name="Copy code")
    code_copy.click()
    assert page.evaluate("navigator.clipboard.readText()").strip() == CODE

    expect(page.locator(".session-group").first).to_have_text("Today")
    title = page.locator(".session-item.is-active .session-title")
    expect(title).to_have_text(long_question)
    line = float(title.evaluate("e => parseFloat(getComputedStyle(e).lineHeight)"))
    assert _box(title)["height"] > 1.5 * line  # wraps to a second line instead of "List the caus…"

    page.get_by_label("Search chats").fill("acute chest")
    expect(page.locator(".session-snippet mark")).to_have_text("acute chest")


def test_opening_a_review_does_not_move_the_answers_footer(server, page):
    server.create_user("dr-layout")
    sign_in(page, server, "dr-layout")
    send(page, "Normal TSH range?")
    answer = page.locator(ASSISTANT)
    footer = answer.locator(".message-footer")

    def layout() -> list[tuple[float, float]]:
        # Where the footer's parts sit within the footer (the page may scroll meanwhile).
        origin = _box(footer)
        parts = [footer, answer.locator(".message-actions"), answer.locator(".message-meta")]
        return [
            (round(b["x"] - origin["x"]), round(b["y"] - origin["y"])) for b in map(_box, parts)
        ]

    def settled() -> tuple[list[tuple[float, float]], float]:
        # Measured once the page has stopped scrolling: two readings 100 ms apart agree.
        last = None
        for _ in range(50):
            now = (layout(), _box(footer)["height"])
            if now == last:
                return now
            last = now
            page.wait_for_timeout(100)
        return now

    before = settled()
    answer.locator(".review-details > summary").click()
    expect(answer.locator(".review-form")).to_be_visible()
    assert settled() == before


def test_question_and_answer_cards_differ_in_the_dark_and_a_phone_keeps_room(server, page):
    page.emulate_media(color_scheme="dark")
    server.create_user("dr-dark")
    sign_in(page, server, "dr-dark")
    send(page, "Warfarin and clarithromycin?")
    colour = "e => getComputedStyle(e).backgroundColor"
    assert page.locator(USER).evaluate(colour) != page.locator(ASSISTANT).evaluate(colour)
    switch = _box(page.locator(".switch-track"))
    settings = _box(page.get_by_role("button", name="Chat settings"))
    centre = lambda box: box["y"] + box["height"] / 2  # noqa: E731
    assert abs(centre(switch) - centre(settings)) <= 1
    page.set_viewport_size({"width": 360, "height": 780})
    assert _box(page.locator(".composer-footer"))["height"] <= 80  # was a quarter of 780 px


def test_eleven_images_attach_the_first_ten_with_a_note(server, page, tmp_path):
    server.create_user("dr-eleven")
    sign_in(page, server, "dr-eleven")
    files = []
    for n in range(11):
        path = tmp_path / f"film-{n}.png"
        Image.new("RGB", (32, 24), (n * 20, 40, 90)).save(path)
        files.append(str(path))
    page.locator("#image-input").set_input_files(files)
    expect(page.locator("#pending-attachments .pending-attachment")).to_have_count(10)
    expect(page.locator(".toast").last).to_contain_text("the first 10 are attached")
