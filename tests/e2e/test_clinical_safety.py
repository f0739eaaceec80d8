"""What keeps a clinician safe in the page, in a real Chromium: a cut-off answer says
so and goes on; a rejected answer stays rejected wherever it goes; clicks do not use
up the questions; the model is named at any width; times are the clinic's."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect
from pypdf import PdfReader

from tests.support.browser import ASSISTANT, send, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def clinic_server(demo_server):
    """A clinic far from UTC (TZ=Asia/Kolkata): every time shown must be its own.
    The session's shared server (tests/conftest.py), on the default flags: the
    default rate limit is what the review clicks must not use up."""
    return demo_server


def test_a_cut_off_answer_says_so_and_continue_extends_it(clinic_server, page):
    clinic_server.create_user("dr-cut")
    sign_in(page, clinic_server, "dr-cut")
    send(page, "List the causes of acute chest pain.")  # the demo model runs to its limit
    answer = page.locator(ASSISTANT)
    cut_off = answer.locator(".message-cutoff")
    expect(cut_off).to_contain_text(re.compile(r"Cut off at \d+ tokens"))
    before = answer.locator(".message-content").inner_text()
    tokens = int(re.search(r"Cut off at (\d+)", cut_off.inner_text()).group(1))

    cut_off.get_by_role("button", name="Continue").click()
    expect(answer).to_have_attribute("data-status", "streaming")
    expect(answer).not_to_have_attribute("data-status", "streaming", timeout=30_000)
    expect(page.locator(ASSISTANT)).to_have_count(1)  # the same answer, longer
    after = page.locator(ASSISTANT).locator(".message-content").inner_text()
    assert len(after) > len(before) and after.startswith(before.split()[0])
    again = page.locator(ASSISTANT).locator(".message-cutoff")
    if again.count():  # cut off once more: at the tokens of both parts
        assert int(re.search(r"Cut off at (\d+)", again.inner_text()).group(1)) > tokens


def test_a_rejected_answer_carries_its_verdict_into_copy_pdf_and_markdown(clinic_server, page):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    clinic_server.create_user("dr-reject")
    sign_in(page, clinic_server, "dr-reject")
    send(page, "PA chest film, 64F: findings?")
    answer = page.locator(ASSISTANT)
    answer.locator(".review-details > summary").click()
    answer.get_by_label("Rejected: not to be relied on").check()
    answer.get_by_label("Comment").fill("Calls a normal hilum enlarged.")
    answer.get_by_role("button", name="Save review").click()
    banner = answer.get_by_role("note", name="Rejected answer")
    expect(banner).to_contain_text("Rejected: not to be relied on")
    expect(banner).to_contain_text("Calls a normal hilum enlarged.")

    answer.get_by_role("button", name="Copy answer").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    first_line = copied.splitlines()[0]
    assert re.fullmatch(
        r"REJECTED by dr-reject on \d{4}-\d\d-\d\d \d\d:\d\d IST: Calls a normal hilum enlarged\.",
        first_line,
    ), first_line

    page.get_by_label("Export this chat").click()
    with page.expect_download() as md_download:
        page.get_by_role("button", name="Markdown").click()
    markdown = Path(md_download.value.path()).read_text()
    answer_text = markdown.split("## Answer 1")[1]
    assert answer_text.lstrip().split("\n")[2].startswith("**REJECTED by dr-reject on")
    # The clinic's clock, named.
    assert re.search(r"- Exported: \d{4}-\d\d-\d\d \d\d:\d\d IST", markdown)
    assert "- Time zone: Asia/Kolkata" in markdown
    with page.expect_download() as pdf_download:
        page.get_by_role("button", name="PDF").click()
    pdf = PdfReader(io.BytesIO(Path(pdf_download.value.path()).read_bytes()))
    text = " ".join(" ".join(p.extract_text().split()) for p in pdf.pages)
    after_heading = text.split("Answer 1")[1]
    assert after_heading.index("REJECTED by dr-reject") < after_heading.index("Provenance")
    assert "IST" in text


def test_thirty_review_clicks_in_a_minute_leave_the_next_question_answered(clinic_server, page):
    clinic_server.create_user("dr-clicks")
    sign_in(page, clinic_server, "dr-clicks")
    send(page, "Normal adult potassium range?")
    for _ in range(30):  # more than the 20 questions a minute of --rate-limit
        helpful = page.locator(ASSISTANT).get_by_role("button", name="Helpful", exact=True)
        pressed = helpful.get_attribute("aria-pressed")
        helpful.click()
        expect(
            page.locator(ASSISTANT).get_by_role("button", name="Helpful", exact=True)
        ).not_to_have_attribute("aria-pressed", pressed)
    send(page, "And the normal sodium range?")
    expect(page.locator(ASSISTANT)).to_have_count(2)
    expect(page.locator(".toast", has_text="Too many")).to_have_count(0)


def test_the_model_is_named_at_any_width_and_a_phone_keeps_the_chats_context(clinic_server, page):
    clinic_server.create_user("dr-phone")
    sign_in(page, clinic_server, "dr-phone")
    model = "MedServer demo (tiny, random weights)"
    expect(page.locator(".status-model")).to_have_text(model)
    expect(page.locator(".welcome").get_by_role("heading", level=2)).to_have_text(model)
    expect(page.get_by_role("heading", level=1)).to_have_text("New chat")  # the chat's title
    send(page, "Dose of amoxicillin for otitis media?")
    page.set_viewport_size({"width": 360, "height": 780})
    expect(page.locator(".topbar-model")).to_be_in_viewport(ratio=1)
    expect(page.locator(".topbar-model")).to_have_text(model)
    # Its whole name, not cut short: "random weights" is what the clinician must read.
    assert page.locator(".topbar-model").evaluate("e => e.scrollWidth <= e.clientWidth")
    expect(page.locator("#topbar-title")).to_be_in_viewport()
    expect(page.get_by_role("button", name="Chat settings")).to_be_in_viewport(ratio=1)
    times = page.locator(".message-meta time")
    expect(times.first).to_have_attribute("title", re.compile(r" IST$"))
    page.set_viewport_size({"width": 1280, "height": 800})
    page.locator(".status-widget > summary").click()
    expect(page.locator("#status-facts")).to_contain_text("Asia/Kolkata")
