"""PDF lab reports through the JSON API and the OpenAI-compatible API: the pages reach
the demo model as images (its prompt grows by theirs), in the PDF's place, labelled;
a damaged PDF is refused with 422."""

from __future__ import annotations

import base64
import io

import pytest
from django.test.client import MULTIPART_CONTENT
from PIL import Image

from api.message_images import Part, message_images
from tests.documents_files import METADATA_TEXT, lab_report
from tests.support.api import data_uri, error_of, png_bytes

pytestmark = pytest.mark.django_db

PROMPT = "Extract the lab values."


def _message(pdf: bytes) -> dict:
    return {"role": "user", "content": PROMPT, "image_data": [data_uri(pdf, "application/pdf")]}


def _analyze(api, *files):
    form = {"prompt": PROMPT, "max_tokens": "4", "images": list(files)}
    response = api.post("/api/analyze", form, content_type=MULTIPART_CONTENT)
    assert response.status_code == 200, response.content
    return response.json()


def test_a_pdf_through_analyze_reaches_the_model_as_its_pages(api):
    one, two, three = (
        _analyze(api, io.BytesIO(lab_report(pages)))["usage"]["prompt_tokens"]
        for pages in (1, 2, 3)
    )

    # Each page adds the demo model's image tokens and its label to the prompt.
    assert one < two < three
    assert three - two == two - one


@pytest.mark.usefixtures("medserver_settings")
def test_the_pages_take_the_pdfs_place_among_the_images_with_their_labels():
    parts = [
        Part("x image 1", png_bytes(), "image/png"),
        Part("x image 2", lab_report(2), "application/octet-stream"),  # the bytes say PDF
        Part("x image 3", png_bytes(color=30), "image/png"),
    ]

    result = message_images(parts, where="x", answer_tokens=12)

    assert result.labels == ("", "Document page 1 of 2", "Document page 2 of 2", "")
    sizes = [Image.open(io.BytesIO(data)).size for data in result.images]
    assert sizes[1] == sizes[2] == (1132, 1600)


def test_openai_completions_take_a_pdf_as_a_file_part_or_a_data_uri(api):
    encoded = base64.b64encode(lab_report(1)).decode()
    for part in (
        {"type": "file", "file": {"file_data": encoded, "filename": "Doe_Jane.pdf"}},
        {"type": "image_url", "image_url": {"url": data_uri(lab_report(1), "application/pdf")}},
    ):
        body = {
            "model": "medserver-demo",
            "messages": [{"role": "user", "content": [{"type": "text", "text": PROMPT}, part]}],
            "max_tokens": 4,
        }

        response = api.post("/v1/chat/completions", body)

        assert response.status_code == 200, response.content
        shown = response.content.decode()
        assert all(text not in shown for text in (*METADATA_TEXT, "Doe_Jane"))


def test_a_report_longer_than_fits_is_cut_and_says_so(api, medserver_settings):
    medserver_settings(max_image_count=1)
    message = {
        "role": "user",
        "content": PROMPT,
        "image_data": [data_uri(lab_report(3), "application/pdf")],
    }

    response = api.post("/api/chat", {"messages": [message], "max_tokens": 4})

    assert response.status_code == 200, response.content
    assert response.json()["notices"] == [
        "messages[0] image 1: 3 pages, the first 1 attached (the most one message may carry, "
        "with its other images (1))."
    ]


def test_a_damaged_pdf_is_refused_with_422(api):
    message = {
        "role": "user",
        "content": PROMPT,
        "image_data": [data_uri(b"%PDF-1.4 x", "application/pdf")],
    }

    response = api.post("/api/chat", {"messages": [message], "max_tokens": 4})

    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "document_rejected"
    assert error["message"] == (
        "messages[0] image 1 could not be read as a PDF (it is damaged or password-protected)."
    )
