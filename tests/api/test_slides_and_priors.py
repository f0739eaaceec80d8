"""Whole-slide images and prior studies through the APIs: a slide becomes its tissue
patches (never its label, macro or overview), answered by the demo model; DICOM
studies of different dates reach the model prior first, with the interval only."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest
from django.test.client import MULTIPART_CONTENT

from api.message_images import Part, message_images
from tests.chat.test_priors import DATE_FORMS, PRIOR_LABEL, _radiograph
from tests.dicom_files import zip_of
from tests.slide_files import LABEL_COLOUR, PROPERTY_TEXT, plain_tiff, tissue_slide
from tests.support.api import data_uri, error_of, png_bytes

pytestmark = pytest.mark.django_db


def _has_colour(png: bytes, colour) -> bool:
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)
    return bool(np.all(np.abs(pixels - np.array(colour)) <= 3, axis=-1).any())


@pytest.mark.usefixtures("medserver_settings")
def test_a_slide_gives_its_tissue_patches_in_its_place_and_nothing_else():
    parts = [
        Part("x image 1", png_bytes(), "image/png"),
        Part("x image 2", tissue_slide()[0], "application/octet-stream"),  # TIFF by its bytes
    ]

    result = message_images(parts, where="x", answer_tokens=12)

    count = len(result.images) - 1
    assert count >= 4
    assert result.labels == (
        "",
        *(f"Slide patch {n} of {count} (10×)" for n in range(1, count + 1)),
    )
    assert not any(_has_colour(image, LABEL_COLOUR) for image in result.images)


def test_a_slide_through_analyze_is_answered_without_its_properties(api):
    form = {"prompt": "Describe.", "images": io.BytesIO(tissue_slide()[0]), "max_tokens": "4"}

    response = api.post("/api/analyze", form, content_type=MULTIPART_CONTENT)

    assert response.status_code == 200, response.content
    assert response.json()["content"]
    shown = response.content.decode()
    assert all(text not in shown for text in PROPERTY_TEXT)


def test_a_tiff_that_is_no_slide_is_refused_with_422(api):
    message = {"role": "user", "content": "?", "image_data": [data_uri(plain_tiff(), "image/tiff")]}

    response = api.post("/api/chat", {"messages": [message], "max_tokens": 4})

    assert response.status_code == 422
    assert error_of(response)["code"] == "slide_rejected"


@pytest.mark.usefixtures("medserver_settings")
def test_dicom_studies_of_two_dates_come_prior_first_with_the_interval_only():
    current = _radiograph("19980514", "1.2.826.0.1.3680043.8.498.81", "CHEST PA", 3000)
    prior = _radiograph("19970312", "1.2.826.0.1.3680043.8.498.80", "CHEST PA", 1000)
    parts = [Part("x image 1", zip_of({"a": current, "b": prior}), "application/zip")]

    result = message_images(parts, where="x", answer_tokens=12)

    assert [label.split(":")[0] for label in result.labels] == [PRIOR_LABEL, "Current study"]
    assert f"DX series (CHEST PA): {PRIOR_LABEL}." in result.notices
    said = " ".join(result.labels + result.notices)
    assert not any(form in said for form in DATE_FORMS)


def test_priors_through_analyze_are_answered_and_no_date_is_logged_or_returned(api, caplog):
    caplog.set_level(logging.DEBUG)
    current = _radiograph("19980514", "1.2.826.0.1.3680043.8.498.91", "CHEST PA", 3000)
    prior = _radiograph("19970312", "1.2.826.0.1.3680043.8.498.90", "CHEST PA", 1000)
    form = {
        "prompt": "Compare with the prior.",
        "images": io.BytesIO(zip_of({"a": current, "b": prior})),
        "max_tokens": "4",
    }

    response = api.post("/api/analyze", form, content_type=MULTIPART_CONTENT)

    assert response.status_code == 200, response.content
    assert f"DX series (CHEST PA): {PRIOR_LABEL}." in response.json()["notices"]
    for text in (response.content.decode(), caplog.text):
        assert not any(form in text for form in DATE_FORMS + ("1997", "1998"))
