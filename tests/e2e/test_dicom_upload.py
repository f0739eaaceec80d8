"""A CT series as a zip, attached in a real Chromium: windowed, sampled, labelled, sent."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.dicom_files import ct_series, zip_of
from tests.support.browser import ASSISTANT, sign_in

pytestmark = pytest.mark.browser


def test_a_zipped_ct_series_is_sampled_to_the_limit_labelled_and_sent(server, page, tmp_path):
    server.create_user("dr-dicom")
    sign_in(page, server, "dr-dicom")
    series = tmp_path / "chest-ct.zip"
    series.write_bytes(zip_of({f"CT/IM{n:04d}.dcm": raw for n, raw in enumerate(ct_series(30))}))

    page.get_by_role("button", name="Chat settings").click()
    page.get_by_label("CT window").select_option(label="Lung (-600/1500)")
    page.locator("#settings-dialog").get_by_role("button", name="Close").click()
    page.locator("#image-input").set_input_files(str(series))

    pending = page.locator("#pending-attachments .pending-attachment")
    expect(pending).to_have_count(10)  # the server's default --max-image-count
    expect(page.locator("#composer-alert")).to_contain_text("30 slices, 10 evenly spaced")
    expect(pending.first).to_have_attribute("title", re.compile(r"CT slice 1 of 30.*lung window"))
    expect(pending.last).to_have_attribute("title", re.compile(r"CT slice 30 of 30"))

    page.get_by_label("Message").fill("Any nodules?")
    page.get_by_role("button", name="Send").click()
    question = page.locator('[data-message-role="user"]')
    expect(question.locator(".message-thumb")).to_have_count(10)
    expect(question.locator(".thumb-label").first).to_have_text(
        re.compile(r"CT slice 1 of 30.*lung window")
    )
    answer = page.locator(ASSISTANT)
    expect(answer).to_have_attribute("data-status", re.compile("complete|stopped"), timeout=60_000)

    page.reload()
    expect(page.locator('[data-message-role="user"] .thumb-label')).to_have_count(10)
