"""Exporting a chat from the page in a real Chromium: the file downloads, the page stays."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from playwright.sync_api import expect
from pypdf import PdfReader

from chat.disclaimer import CLINICAL_DISCLAIMER
from tests.support.browser import send, sign_in

pytestmark = pytest.mark.browser


def test_export_menu_downloads_the_chat_as_pdf_and_markdown(server, page):
    server.create_user("dr-export")
    sign_in(page, server, "dr-export")
    send(page, "Lactate 4.1 mmol/L ≥ 4: next steps?")
    chat_url = page.url

    page.get_by_label("Export this chat").click()
    with page.expect_download() as pdf_download:
        page.get_by_role("button", name="PDF").click()
    pdf = Path(pdf_download.value.path()).read_bytes()
    assert pdf_download.value.suggested_filename.startswith("lactate-41-mmoll-4-next-steps-")
    text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "Lactate 4.1 mmol/L ≥ 4: next steps?" in text and CLINICAL_DISCLAIMER in text

    page.get_by_label("Include the model's thinking").check()
    with page.expect_download() as md_download:
        page.get_by_role("button", name="Markdown").click()
    assert md_download.value.url.endswith("/export.md?thinking=1")
    markdown = Path(md_download.value.path()).read_text()
    assert markdown.startswith("# Lactate 4.1 mmol/L ≥ 4: next steps?")
    expect(page).to_have_url(chat_url)  # the page stayed where it was
