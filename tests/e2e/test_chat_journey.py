"""The chat page's whole journey in a real Chromium, against `medserver -m demo`.

Streaming, stop, regenerate, edit, delete, images and the lightbox, sessions,
settings, reconnecting, the phone layout. Each test signs in as its own user,
so one test's chats never show in another's. Every page is watched: a request
to any host but 127.0.0.1, or a JavaScript error, fails the test (see
tests/e2e/chromium.py).
"""

from __future__ import annotations

import re

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from tests.support.browser import ASSISTANT, PASSWORD, USER, open_page, send, sign_in

pytestmark = pytest.mark.browser

USERS = (
    "dr-stream", "dr-regen", "dr-edit", "dr-delete", "dr-images", "dr-phone",
    "dr-sessions", "dr-settings", "dr-reconnect", "dr-dropped", "dr-keys", "dr-light",
)  # fmt: skip


@pytest.fixture(scope="module")
def server(busy_server):
    """The demo model, greedy, with the loop guard off: the random model soon repeats
    itself, and the tests that watch a long answer stream need it to go on. Every
    test comes from 127.0.0.1, so the address's rate budget is raised
    (tests/e2e/conftest.py)."""
    return busy_server


@pytest.fixture(scope="module", autouse=True)
def users(server):
    """Every test's account, made in one go (a manage.py call takes a second or two)."""
    names = ", ".join(repr(name) for name in USERS)
    server.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User\n"
        f"for name in ({names},):\n"
        f"    User.objects.create_superuser(name, name + '@clinic.example', {PASSWORD!r})",
    )


def png(path, size, color) -> str:
    Image.new("RGB", size, color).save(path)
    return str(path)


def ask_for_long_answers(page: Page) -> None:
    """Answers long enough to watch them stream (the server's default is 24 tokens)."""
    page.get_by_role("button", name="Chat settings").click()
    dialog = page.locator("#settings-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Max tokens").fill("3000")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    expect(page.locator(".toast").last).to_have_text("Settings saved.")


def text_grows(page: Page, message_id: str) -> None:
    """Wait until the message (answer or thinking trace: the random demo model
    may start a trace at any point) is longer than it is now, or has ended."""
    length = "id => document.getElementById('message-' + id).textContent.length"
    ended = "id => document.getElementById('message-' + id).dataset.status !== 'streaming'"
    now = page.evaluate(length, message_id)
    page.wait_for_function(
        f"([id, now]) => ({ended})(id) || ({length})(id) > now",
        arg=[message_id, now],
        timeout=20_000,
    )


def long_answer(page: Page, question: str) -> str:
    """Send `question`; return its answer's id once it has streamed for a moment.

    The random demo model may choose its end-of-turn token early on: an answer
    that ends before it could be watched is regenerated, up to three times.
    """
    ask_for_long_answers(page)
    page.get_by_label("Message").fill(question)
    page.get_by_role("button", name="Send").click()
    for _ in range(3):
        answer = page.locator(ASSISTANT).last
        expect(answer).to_have_attribute("data-status", "streaming")
        message_id = answer.get_attribute("data-message-id")
        text_grows(page, message_id)
        text_grows(page, message_id)
        if answer.get_attribute("data-status") == "streaming":
            return message_id
        answer.get_by_role("button", name="Regenerate answer").click()
        expect(page.locator(ASSISTANT).last).not_to_have_attribute("data-message-id", message_id)
    pytest.fail("the demo model ended three answers in a row at once")


def stop_if_still_streaming(page: Page, answer) -> None:
    """End a long answer that the test has seen enough of.

    (Stopping itself is proven in the first test; here the random model may
    also have chosen to end the answer meanwhile, which is as good.)
    """
    if answer.get_attribute("data-status") == "streaming":
        page.keyboard.press("Escape")
    expect(answer).to_have_attribute("data-status", re.compile("stopped|complete"))


def test_an_answer_streams_follows_and_stops_on_escape_and_stays_stopped(server, page):
    sign_in(page, server, "dr-stream")
    # A question longer than the screen, so following the answer means scrolling.
    long_question = "\n".join(f"Finding {n}: lactate rising." for n in range(40))
    message_id = long_answer(page, long_question)  # tokens keep arriving: it streams

    answer = page.locator(f'[data-message-id="{message_id}"]')
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    expect(page.get_by_role("button", name="Send")).to_be_hidden()
    messages = page.locator("#messages")
    at_bottom = "m => m.scrollHeight - m.scrollTop - m.clientHeight < 80"
    assert messages.evaluate(at_bottom), "the view follows the answer"

    # Scrolled up to read, the reader is left alone and offered a way back.
    box = messages.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -20_000)
    jump = page.get_by_role("button", name="Jump to latest")
    expect(jump).to_be_visible()
    # (The wheel may still be easing upwards: the view must not move down.)
    where_the_reader_is = messages.evaluate("m => m.scrollTop")
    text_grows(page, message_id)
    assert messages.evaluate("m => m.scrollTop") <= where_the_reader_is + 2, (
        "the view stayed where the reader is"
    )
    assert not messages.evaluate(at_bottom)
    jump.click()
    expect(jump).to_be_hidden()

    page.keyboard.press("Escape")
    expect(answer).to_have_attribute("data-status", "stopped", timeout=15_000)
    expect(answer.locator(".message-meta")).to_contain_text("Stopped")
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    stopped_text = answer.locator(".message-content").inner_text()
    assert stopped_text.strip()

    page.reload()
    expect(answer).to_have_attribute("data-status", "stopped")
    assert answer.locator(".message-content").inner_text() == stopped_text


def test_regenerate_keeps_the_earlier_answer_as_a_version_to_switch_back_to(server, page):
    sign_in(page, server, "dr-regen")
    send(page, "Causes of hyponatraemia?")
    first = page.locator(ASSISTANT)
    first_id = first.get_attribute("data-message-id")

    first.get_by_role("button", name="Regenerate answer").click()
    answer = page.locator(ASSISTANT)
    expect(answer).not_to_have_attribute("data-message-id", first_id)
    expect(answer).to_have_attribute("data-status", "complete", timeout=30_000)
    expect(answer.locator(".versions-count")).to_have_text("2 / 2")
    expect(page.locator(ASSISTANT)).to_have_count(1)

    answer.get_by_role("button", name="Previous version").click()
    expect(page.locator(ASSISTANT)).to_have_attribute("data-message-id", first_id)
    expect(page.locator(f"{ASSISTANT} .versions-count")).to_have_text("1 / 2")

    page.reload()  # the choice is kept on the server
    expect(page.locator(ASSISTANT)).to_have_attribute("data-message-id", first_id)
    expect(page.locator(f"{ASSISTANT} .versions-count")).to_have_text("1 / 2")


def test_editing_a_question_resends_it_and_keeps_the_original_branch(server, page):
    sign_in(page, server, "dr-edit")
    send(page, "Amoxicillin dose for otitis media?")
    original_answer = page.locator(ASSISTANT).get_attribute("data-message-id")

    # Esc leaves the editor without changing anything.
    page.locator(USER).get_by_role("button", name="Edit question").click()
    expect(page.get_by_label("Edit your question")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.get_by_label("Edit your question")).to_have_count(0)

    page.locator(USER).get_by_role("button", name="Edit question").click()
    page.get_by_label("Edit your question").fill("Amoxicillin dose for otitis media, 20 kg child?")
    page.get_by_role("button", name="Save and send").click()
    expect(page.locator(USER)).to_contain_text("20 kg child")
    answer = page.locator(ASSISTANT)
    expect(answer).not_to_have_attribute("data-message-id", original_answer)
    expect(answer).to_have_attribute("data-status", "complete", timeout=30_000)
    expect(page.locator(f"{USER} .versions-count")).to_have_text("2 / 2")

    page.locator(USER).get_by_role("button", name="Previous version").click()
    expect(page.locator(USER)).not_to_contain_text("20 kg child")
    expect(page.locator(ASSISTANT)).to_have_attribute("data-message-id", original_answer)

    page.reload()
    expect(page.locator(USER)).to_contain_text("Amoxicillin dose for otitis media?")
    expect(page.locator(f"{USER} .versions-count")).to_have_text("1 / 2")


def test_delete_asks_first_then_removes_the_question_and_its_answer(server, page):
    sign_in(page, server, "dr-delete")
    send(page, "First question")
    send(page, "Second question")
    expect(page.locator("[data-message-id]")).to_have_count(4)
    dialog = page.locator("#confirm-dialog")

    page.locator(USER).last.get_by_role("button", name="Delete question").click()
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Delete this question and its answer?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("[data-message-id]")).to_have_count(4)

    page.locator(USER).last.get_by_role("button", name="Delete question").click()
    dialog.get_by_role("button", name="Delete").click()
    expect(page.locator("[data-message-id]")).to_have_count(2)
    expect(page.locator(".toast").last).to_have_text("Message deleted.")

    page.reload()
    expect(page.locator("[data-message-id]")).to_have_count(2)
    expect(page.locator(USER)).to_have_text("First question")


def test_two_images_are_attached_sent_and_viewed_in_the_lightbox(server, page, tmp_path):
    sign_in(page, server, "dr-images")
    expect(page.locator("#composer-count")).to_contain_text("10 images")  # limits up front
    # One by the file picker, one pasted (as from a screenshot tool).
    page.locator("#image-input").set_input_files(png(tmp_path / "ap.png", (640, 480), (60, 60, 60)))
    expect(page.locator(".pending-attachment")).to_have_count(1)
    page.evaluate(
        """async () => {
            const canvas = document.createElement("canvas");
            canvas.width = 300;
            canvas.height = 500;
            const blob = await new Promise((done) => canvas.toBlob(done, "image/png"));
            const data = new DataTransfer();
            data.items.add(new File([blob], "lateral.png", {type: "image/png"}));
            document.getElementById("composer-input").dispatchEvent(
                new ClipboardEvent("paste", {clipboardData: data, bubbles: true}));
        }"""
    )
    expect(page.locator(".pending-attachment")).to_have_count(2)
    # A third, dropped on the page, then removed before sending.
    page.evaluate(
        """() => {
            const data = new DataTransfer();
            const broken = new Uint8Array([137, 80, 78, 71]);  // a PNG cut short
            data.items.add(new File([broken], "x.png", {type: "image/png"}));
            document.getElementById("messages").dispatchEvent(
                new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
        }"""
    )
    alert = page.locator("#composer-alert")
    expect(alert).to_contain_text("Upload 1 could not be read as an image")
    expect(page.locator(".pending-attachment")).to_have_count(2)

    send(page, "Compare the two views.")
    thumbs = page.locator(f"{USER} .message-thumb")
    expect(thumbs).to_have_count(2)
    expect(page.locator(".pending-attachment")).to_have_count(0)

    thumbs.first.click()
    lightbox = page.locator("#lightbox")
    expect(lightbox).to_be_visible()
    counter = lightbox.locator(".lightbox-counter")
    expect(counter).to_have_text("1 / 2")
    first_src = lightbox.locator("img").get_attribute("src")
    page.keyboard.press("ArrowRight")
    expect(counter).to_have_text("2 / 2")
    assert lightbox.locator("img").get_attribute("src") != first_src
    lightbox.get_by_role("button", name="Next image").click()
    expect(counter).to_have_text("1 / 2")  # round again
    lightbox.get_by_role("button", name="Previous image").click()
    expect(counter).to_have_text("2 / 2")

    zoom = lightbox.locator(".lightbox-zoom-level")
    page.mouse.move(640, 400)
    page.mouse.wheel(0, -400)
    expect(zoom).not_to_have_text("100%")
    page.keyboard.press("0")
    expect(zoom).to_have_text("100%")
    # Two fingers moving apart zoom in, as on a tablet.
    page.evaluate(
        """() => {
            const stage = document.querySelector(".lightbox-stage");
            const touch = (type, id, x) => stage.dispatchEvent(new PointerEvent(type,
                {pointerId: id, pointerType: "touch", clientX: x, clientY: 400, bubbles: true}));
            touch("pointerdown", 11, 600); touch("pointerdown", 12, 680);
            touch("pointermove", 11, 520); touch("pointermove", 12, 760);
            touch("pointerup", 11, 520); touch("pointerup", 12, 760);
        }"""
    )
    expect(zoom).to_have_text("300%")
    page.keyboard.press("Escape")
    expect(lightbox).to_be_hidden()

    page.reload()
    expect(page.locator(f"{USER} .message-thumb")).to_have_count(2)
    page.locator(f"{USER} .message-thumb").last.click()
    expect(page.locator("#lightbox .lightbox-counter")).to_have_text("2 / 2")


def test_phone_width_layout_keeps_everything_reachable(server, browser):
    phone, watch = open_page(
        browser, viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True
    )
    try:
        sign_in(phone, server, "dr-phone")
        send(phone, "Paediatric fever without a source?")
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"the page is {width} px wide on a 360 px phone"
        expect(phone.locator(".disclaimer")).to_be_visible()
        expect(phone.get_by_label("Message")).to_be_in_viewport()
        for button in ("Send", "Attach images", "Chat settings"):
            box = phone.get_by_role("button", name=button).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= 360, button

        sidebar = phone.locator("#sidebar")
        expect(sidebar).to_be_hidden()
        phone.get_by_role("button", name="Show chats").click()
        expect(sidebar).to_be_visible()
        expect(sidebar.locator(".session-link.is-active")).to_contain_text("Paediatric fever")
        phone.keyboard.press("Escape")
        expect(sidebar).to_be_hidden()
    finally:
        phone.context.close()
    assert watch.errors == []
    assert watch.foreign_requests() == []


def test_sessions_are_renamed_searched_and_deleted(server, page):
    sign_in(page, server, "dr-sessions")
    send(page, "Hyperkalaemia ECG changes?")
    first = page.locator(".session-item.is-active")
    expect(first).to_contain_text("Hyperkalaemia ECG changes?")  # titled from the question

    first.get_by_role("button", name=re.compile("^Rename chat")).click()
    page.get_by_label("Chat title").fill("Potassium case")
    page.get_by_label("Chat title").press("Enter")
    expect(page.locator(".session-item.is-active")).to_contain_text("Potassium case")
    expect(page.locator("#topbar-title")).to_have_text("Potassium case")

    page.get_by_role("button", name="New chat").click()
    expect(page.locator(".welcome")).to_be_visible()
    send(page, "Asthma exacerbation plan")
    items = page.locator("#session-list .session-item")
    expect(items).to_have_count(2)
    expect(items.first).to_contain_text("Asthma exacerbation plan")  # by last activity

    search = page.get_by_label("Search chats")
    search.fill("ECG")  # only in a message of the first chat
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text("Potassium case")
    search.fill("asthma")
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text("Asthma exacerbation plan")
    search.fill("")
    expect(items).to_have_count(2)

    page.get_by_role("button", name="Delete chat: Potassium case").click()
    page.locator("#confirm-dialog").get_by_role("button", name="Delete").click()
    expect(items).to_have_count(1)
    expect(page.locator(".toast").last).to_have_text("Chat deleted.")
    page.reload()
    expect(page.locator("#session-list .session-item")).to_have_count(1)


def test_settings_thinking_switch_copy_and_status_are_kept_per_chat(server, page):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, server, "dr-settings")
    page.get_by_role("button", name="Chat settings").click()
    dialog = page.locator("#settings-dialog")
    dialog.get_by_label("System prompt").fill("Answer as a consultant nephrologist.")
    dialog.get_by_label("Temperature").fill("0.7")
    dialog.get_by_label("Max tokens").fill("16")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()

    switch = page.get_by_role("switch", name="Thinking")
    expect(switch).to_be_checked()
    switch.uncheck(force=True)
    expect(page.locator(".toast").last).to_have_text("Thinking off for this chat.")

    send(page, "Target ferritin in CKD?")
    answer = page.locator(ASSISTANT)
    tokens = re.search(r"(\d+) tokens", answer.locator(".message-meta").inner_text())
    assert tokens and int(tokens.group(1)) <= 16  # its own max tokens, not the server's 24
    answer.get_by_role("button", name="Copy answer").click()
    expect(page.locator(".toast").last).to_have_text("Answer copied.")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == answer.locator("template.copy-source").evaluate("t => t.content.textContent")

    page.locator(".status-widget > summary").click()  # named by its text: state and model
    facts = page.locator("#status-facts")
    expect(facts).to_be_visible()
    expect(facts).to_contain_text("Transformers")
    expect(facts).to_contain_text("MedServer demo")
    page.wait_for_timeout(3500)  # one poll of the status widget, from the page view
    assert any("/chat/status/" in url for url in page.watch.urls)

    page.reload()
    expect(page.get_by_role("switch", name="Thinking")).not_to_be_checked()
    page.get_by_role("button", name="Chat settings").click()
    expect(dialog.get_by_label("System prompt")).to_have_value(
        "Answer as a consultant nephrologist."
    )
    expect(dialog.get_by_label("Temperature")).to_have_value("0.7")
    expect(dialog.get_by_label("Max tokens")).to_have_value("16")


def test_an_answer_in_flight_is_picked_up_again_after_reload(server, page):
    sign_in(page, server, "dr-reconnect")
    message_id = long_answer(page, "Explain diabetic ketoacidosis management.")
    before = page.locator(f"#answer-{message_id}").inner_text()

    page.reload()  # the page goes away; the answer goes on on the server
    expect(page.locator("body")).to_have_attribute("data-socket", "open")
    answer = page.locator(f'[data-message-id="{message_id}"]')
    expect(answer).to_have_attribute("data-status", "streaming")
    # Straight away it shows at least what the old page had, then more arrives.
    page.wait_for_function(
        "([id, n]) => document.getElementById('answer-' + id).innerText.length >= n",
        arg=[message_id, len(before)],
        timeout=5_000,
    )
    text_grows(page, message_id)
    stop_if_still_streaming(page, answer)


def test_a_dropped_connection_says_so_reconnects_and_catches_up(server, page):
    # Keep a handle on the page's sockets, to cut the connection as a network would.
    page.add_init_script(
        """(() => {
            const Native = window.WebSocket;
            window.openedSockets = [];
            window.WebSocket = function (...args) {
                const socket = new Native(...args);
                window.openedSockets.push(socket);
                return socket;
            };
            window.WebSocket.prototype = Native.prototype;
            Object.assign(window.WebSocket, Native);
        })()"""
    )
    sign_in(page, server, "dr-dropped")
    message_id = long_answer(page, "Outline the management of hyperkalaemia.")
    answer = page.locator(f'[data-message-id="{message_id}"]')

    page.evaluate("window.openedSockets.at(-1).close()")
    expect(page.locator("body")).to_have_attribute("data-socket", "closed")
    expect(page.locator("#connection-state")).to_have_text("Disconnected · reconnecting…")
    expect(page.locator("body")).to_have_attribute("data-socket", "open", timeout=10_000)
    expect(page.locator("#connection-state")).to_be_hidden()
    text_grows(page, message_id)  # the answer went on, and streams here again
    stop_if_still_streaming(page, answer)
    shown = page.locator(f"#answer-{message_id}").inner_text()
    page.reload()
    assert page.locator(f"#answer-{message_id}").inner_text() == shown


def test_keyboard_and_the_length_limit_in_the_composer(server, page):
    sign_in(page, server, "dr-keys")
    composer = page.get_by_label("Message")
    composer.click()
    composer.type("Line one")
    composer.press("Shift+Enter")
    composer.type("Line two")
    expect(composer).to_have_value("Line one\nLine two")
    expect(page.locator("[data-message-id]")).to_have_count(0)
    expect(page.locator("#composer-count")).to_contain_text("17 / 50,000 · ≈5 tokens")

    composer.fill("x" * 50_001)
    expect(page.locator("#composer-form")).to_have_attribute("data-over-limit", "")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#composer-alert")).to_contain_text("the limit is 50,000")
    expect(page.locator("[data-message-id]")).to_have_count(0)

    composer.fill("Sent with Enter")
    composer.press("Enter")
    expect(page.locator(USER)).to_have_text("Sent with Enter")


def test_the_light_theme_follows_the_system_setting(server, browser):
    light, watch = open_page(browser, color_scheme="light")
    try:
        sign_in(light, server, "dr-light")
        background = light.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(246, 247, 248)"
    finally:
        light.context.close()
    assert watch.errors == [] and watch.foreign_requests() == []
