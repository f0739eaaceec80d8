"""Compressed DICOM through the JSON API and the OpenAI-compatible API: the slices the
model gets are those of the uncompressed series, and an undecodable syntax is refused
by name with a 422."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from django.test.client import MULTIPART_CONTENT
from PIL import Image
from pydicom.uid import JPEG2000Lossless, RLELossless

from api.message_images import Part, message_images
from tests.api.test_dicom import ask, assert_names_nobody, dicom_uri, zipped
from tests.chat.test_dicom_compressed import JPEG_XL_LOSSLESS, ct_volume
from tests.dicom_files import compressed, jpeg_lossless, with_syntax
from tests.support.api import error_of

pytestmark = pytest.mark.django_db


@pytest.mark.usefixtures("medserver_settings")
def test_the_model_gets_the_same_slices_from_a_compressed_series_as_from_the_plain_one():
    _, raws = ct_volume()
    plain = message_images(
        [Part("x image 1", zipped(raws), "application/zip")], where="x", answer_tokens=12
    )
    for packed in (
        [compressed(r, JPEG2000Lossless) for r in raws],
        [compressed(r, RLELossless) for r in raws],
        [jpeg_lossless(r) for r in raws],
    ):
        got = message_images(
            [Part("x image 1", zipped(packed), "application/zip")], where="x", answer_tokens=12
        )

        assert got.labels == plain.labels
        for a, b in zip(got.images, plain.images, strict=True):
            assert np.array_equal(
                np.asarray(Image.open(io.BytesIO(a))), np.asarray(Image.open(io.BytesIO(b)))
            )


def test_compressed_series_are_answered_through_analyze_and_openai_completions(api):
    _, raws = ct_volume()
    form = {
        "prompt": "Any nodules?",
        "images": io.BytesIO(zipped([compressed(r, RLELossless) for r in raws])),
        "max_tokens": "6",
    }
    response = api.post("/api/analyze", form, content_type=MULTIPART_CONTENT)
    assert response.status_code == 200, response.content
    assert_names_nobody(response)

    encoded = base64.b64encode(compressed(raws[0], JPEG2000Lossless)).decode()
    part = {"type": "file", "file": {"file_data": encoded, "filename": "IM0.dcm"}}
    body = {
        "model": "medserver-demo",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Findings?"}, part]}],
        "max_tokens": 6,
    }
    response = api.post("/v1/chat/completions", body)
    assert response.status_code == 200, response.content
    assert response.json()["choices"][0]["message"]["content"]


def test_an_undecodable_syntax_is_refused_by_name_through_the_api(api):
    _, raws = ct_volume(1)

    response = api.post("/api/chat", ask(dicom_uri(with_syntax(raws[0], JPEG_XL_LOSSLESS))))

    assert response.status_code == 422, response.content
    error = error_of(response)
    assert error["code"] == "dicom_rejected"
    assert "is compressed as JPEG XL Lossless (1.2.840.10008.1.2.4.110)" in error["message"]
    assert_names_nobody(response)
