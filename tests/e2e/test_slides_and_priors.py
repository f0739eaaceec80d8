"""In a real Chromium: a whole-slide image becomes its overview and tissue patches in
the composer and the question; an image marked as a prior study with the small
form reaches the question first, labelled with its interval."""

from __future__ import annotations

import io
import os
import re

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.e2e.accessibility import axe_violations
from tests.slide_files import tissue_slide
from tests.support.browser import ASSISTANT, USER, sign_in

pytestmark = pytest.mark.browser
# Where to save the README's screenshot of a slide, when asked (docs/screenshots/).
SCREENSHOT = os.environ.get("MEDSERVER_SLIDE_SCREENSHOT")


def test_a_slide_shows_its_overview_and_patches_and_the_model_answers(server, page, tmp_path):
    server.create_user("dr-slide")
    sign_in(page, server, "dr-slide")
    slide = tmp_path / "DOE_JANE.svs"
    slide.write_bytes(tissue_slide()[0])

    page.locator("#image-input").set_input_files(str(slide))

    pending = page.locator("#pending-attachments .pending-attachment")
    # Reading a slide takes a few seconds on a busy machine.
    expect(pending).to_have_count(7, timeout=30_000)  # the overview and six tissue patches
    expect(pending.first).to_have_class(re.compile("is-overview"))
    expect(pending.first).to_have_attribute("title", re.compile(r"6 patches at 10× outlined"))
    expect(pending.nth(1)).to_have_attribute("title", "Slide patch 1 of 6 (10×)")
    expect(page.locator("#composer-alert .alert-error")).to_have_count(0)

    page.get_by_label("Message").fill("Describe the tissue in these patches.")
    page.get_by_role("button", name="Send").click()
    question = page.locator(USER)
    expect(question.locator(".message-thumb")).to_have_count(7)
    expect(question.locator(".thumb-label").nth(1)).to_have_text("Slide patch 1 of 6 (10×)")
    expect(page.locator(ASSISTANT)).to_have_attribute(
        "data-status", re.compile("complete|stopped"), timeout=60_000
    )
    assert "DOE" not in page.content()
    if SCREENSHOT:
        page.locator("#messages").evaluate("m => m.scrollTo({top: 0})")
        page.wait_for_timeout(300)
        page.screenshot(path=SCREENSHOT)


def _png(path, level: int) -> str:
    out = io.BytesIO()
    Image.new("L", (64, 64), level).save(out, "PNG")
    path.write_bytes(out.getvalue())
    return str(path)


def test_an_image_marked_prior_with_the_form_goes_first_with_its_interval(server, page, tmp_path):
    server.create_user("dr-prior")
    sign_in(page, server, "dr-prior")
    pending = page.locator("#pending-attachments .pending-attachment")

    page.locator("#image-input").set_input_files(_png(tmp_path / "today.png", 200))
    expect(pending).to_have_count(1)
    page.locator("#image-input").set_input_files(_png(tmp_path / "before.png", 60))
    expect(pending).to_have_count(2)
    earlier = pending.nth(1)
    earlier.get_by_text("Prior?").click()
    assert axe_violations(page) == []  # the open form, and the thumbnails around it
    earlier.get_by_label("Prior study, taken").fill("14")
    earlier.get_by_label("Unit").select_option("months")
    earlier.get_by_role("button", name="Mark as prior").click()

    expect(pending.nth(1).locator(".study-badge")).to_have_text("Prior · 14 months")
    page.get_by_label("Message").fill("Compare with the prior.")
    page.get_by_role("button", name="Send").click()
    labels = page.locator(f"{USER} .thumb-label")
    expect(labels).to_have_text(["Prior study (14 months before the current one)", "Current study"])
    expect(page.locator(ASSISTANT)).to_have_attribute(
        "data-status", re.compile("complete|stopped"), timeout=60_000
    )
