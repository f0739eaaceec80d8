"""DICOM through the JSON API and the OpenAI-compatible API, in-process on the demo model.

The files are real DICOM written with pydicom (tests.dicom_files), many of them
carrying a patient's name, IDs and institution, none of which may come back.
"""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from django.test.client import MULTIPART_CONTENT
from PIL import Image

from api.message_images import Part, message_images
from tests.dicom_files import IDENTIFYING_TEXT, PATIENT_TAGS, ct_series, ct_slice, zip_of
from tests.support.api import data_uri, error_of, png_bytes
from tests.support.sse import read_events

pytestmark = pytest.mark.django_db

MB = 1024 * 1024


def zipped(raws: list[bytes]) -> bytes:
    """A PACS-style export: the files in a folder named after the patient."""
    return zip_of({f"{PATIENT_TAGS['PatientName']}/IM{n:04d}": raw for n, raw in enumerate(raws)})


def dicom_uri(raw: bytes, kind: str = "application/dicom") -> str:
    return data_uri(raw, kind)


def ask(*uris: str, text: str = "Findings?", **fields) -> dict:
    message = {"role": "user", "content": text, "image_data": list(uris)}
    return {"messages": [message], "max_tokens": 6, **fields}


def assert_names_nobody(response) -> None:
    shown = response.content.decode().lower()
    for identifying in IDENTIFYING_TEXT:
        assert identifying.lower() not in shown, identifying


# --- answers


def test_a_zipped_ct_series_through_analyze_is_answered_and_sampled_to_what_fits(
    api, medserver_settings
):
    medserver_settings(max_image_count=5)
    form = {
        "prompt": "Any nodules?",
        "images": io.BytesIO(zipped(ct_series(12, **PATIENT_TAGS))),
        "dicom_window": "lung",
        "max_tokens": "6",
    }

    response = api.post("/api/analyze", form, content_type=MULTIPART_CONTENT)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["content"] and body["usage"]["completion_tokens"] <= 6
    assert body["notices"] == [
        "CT series (AX LUNG 1.25): 12 slices, 5 evenly spaced attached (the most that one "
        "message may carry, with its other images (at most 5))."
    ]
    assert_names_nobody(response)


def test_a_zipped_series_through_chat_is_answered_without_naming_the_patient(api):
    raws = ct_series(3, **PATIENT_TAGS)

    response = api.post("/api/chat", ask(dicom_uri(zipped(raws), "application/zip")))

    assert response.status_code == 200, response.content
    assert response.json()["content"]
    assert response.json()["notices"] == []
    assert_names_nobody(response)


def test_dicom_is_recognised_by_its_bytes_whatever_type_the_data_uri_says(api):
    single = ct_slice(np.zeros((8, 8)), **PATIENT_TAGS)
    series = zipped(ct_series(2))

    for uri in (
        dicom_uri(single, "application/octet-stream"),
        dicom_uri(single, "image/png"),
        dicom_uri(series, "application/octet-stream"),
    ):
        response = api.post("/api/chat", ask(uri))
        assert response.status_code == 200, response.content
        assert_names_nobody(response)


def test_the_slice_labels_reach_the_model_as_text(api):
    three_slices = api.post("/api/chat", ask(dicom_uri(zipped(ct_series(3))))).json()
    three_images = api.post("/api/chat", ask(*[data_uri(png_bytes())] * 3)).json()

    # The same three images, but each slice is followed by "CT slice n of 3, AX LUNG 1.25 (...)".
    extra = three_slices["usage"]["prompt_tokens"] - three_images["usage"]["prompt_tokens"]
    assert extra >= 3 * 8


def test_a_series_sent_file_by_file_is_one_series_and_not_counted_as_images(
    api, medserver_settings
):
    medserver_settings(max_image_count=4)
    uris = [dicom_uri(raw) for raw in ct_series(9)]

    response = api.post("/api/chat", ask(*uris))

    assert response.status_code == 200, response.content
    assert (
        "CT series (AX LUNG 1.25): 9 slices, 4 evenly spaced attached"
        in (response.json()["notices"][0])
    )


def test_analyze_takes_single_dcm_files_by_name(api):
    files = [io.BytesIO(raw) for raw in ct_series(2)]
    for n, handle in enumerate(files):
        handle.name = f"IM{n}.dcm"
    form = {"prompt": "Compare.", "images": files, "max_tokens": "4"}

    response = api.post("/api/analyze", form, content_type=MULTIPART_CONTENT)

    assert response.status_code == 200, response.content


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_streamed_answer_tells_of_the_sampling_in_its_done_frame(
    async_api, medserver_settings
):
    medserver_settings(max_image_count=3)

    response = await async_api.post(
        "/api/chat", {**ask(dicom_uri(zipped(ct_series(7)))), "stream": True}
    )

    events = await read_events(response)
    assert events[-1] == "[DONE]"
    assert events[-2]["type"] == "done"
    assert events[-2]["notices"] == [
        "CT series (AX LUNG 1.25): 7 slices, 3 evenly spaced attached (the most that one "
        "message may carry, with its other images (at most 3))."
    ]


def test_openai_completions_take_dicom_as_image_url_or_file_parts(api):
    series = zipped(ct_series(3, **PATIENT_TAGS))
    encoded = base64.b64encode(ct_slice(np.zeros((8, 8)), **PATIENT_TAGS)).decode()
    parts = [
        {"type": "image_url", "image_url": {"url": dicom_uri(series, "application/zip")}},
        {"type": "file", "file": {"file_data": encoded, "filename": "Doe_Jane.dcm"}},
    ]
    for part in parts:
        body = {
            "model": "medserver-demo",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Findings?"}, part]}
            ],
            "max_tokens": 6,
            "dicom_window": "mediastinum",
        }

        response = api.post("/v1/chat/completions", body)

        assert response.status_code == 200, response.content
        assert response.json()["choices"][0]["message"]["content"]
        assert_names_nobody(response)


# --- what the model is given


def _image(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


@pytest.mark.usefixtures("medserver_settings")
def test_slices_take_the_place_of_the_first_dicom_part_with_their_labels():
    parts = [
        Part("x image 1", png_bytes(), "image/png"),
        Part("x image 2", zipped(ct_series(2)), "application/zip"),
        Part("x image 3", png_bytes(color=30), "image/png"),
    ]

    result = message_images(parts, where="x", answer_tokens=12, window="brain")

    assert result.labels == (
        "",
        "CT slice 1 of 2, AX LUNG 1.25 (brain window)",
        "CT slice 2 of 2, AX LUNG 1.25 (brain window)",
        "",
    )
    assert [_image(data).format for data in result.images] == ["PNG"] * 4
    assert _image(result.images[1]).size == (8, 8)


@pytest.mark.usefixtures("medserver_settings")
def test_ct_is_windowed_as_asked_and_by_default_as_medgemmas_three_windows():
    part = Part("x image 1", zipped(ct_series(1)), "application/zip")

    by_default = message_images([part], where="x", answer_tokens=12)
    lung = message_images([part], where="x", answer_tokens=12, window="lung")

    assert _image(by_default.images[0]).mode == "RGB"
    assert by_default.labels == ("CT image, AX LUNG 1.25 (MedGemma CT windows as RGB)",)
    assert _image(lung.images[0]).mode == "L"
    assert lung.labels == ("CT image, AX LUNG 1.25 (lung window)",)


# --- refusals


def test_a_broken_dicom_file_is_refused_with_a_clear_error(api):
    truncated = ct_slice(np.zeros((64, 64)), **PATIENT_TAGS)[:700]
    for raw, problem in [
        (b"not really DICOM", "could not be read as DICOM."),
        (truncated, "holds no image (a report, a directory or a broken file)."),
    ]:
        response = api.post("/api/chat", ask(dicom_uri(raw)))

        assert response.status_code == 422, response.content
        error = error_of(response)
        assert error["message"] == f"messages[0] image 1 {problem}"
        assert error["code"] == "dicom_rejected"
        assert error["param"] == "messages[0]"
        assert_names_nobody(response)


def test_a_zip_of_broken_files_names_them_by_place_not_by_their_path(api):
    raws = [b"junk", ct_slice(np.zeros((4, 4)), BurnedInAnnotation="YES", **PATIENT_TAGS)]

    response = api.post("/api/chat", ask(dicom_uri(zipped(raws), "application/zip")))

    assert response.status_code == 422
    assert (
        error_of(response)["message"] == "messages[0] image 1, file 1 could not be read as DICOM."
    )
    assert_names_nobody(response)


def test_a_zip_with_some_broken_files_is_answered_and_says_what_was_left_out(api):
    raws = [*ct_series(2, **PATIENT_TAGS), b"junk"]

    response = api.post("/api/chat", ask(dicom_uri(zipped(raws), "application/zip")))

    assert response.status_code == 200
    assert response.json()["notices"] == [
        "1 file(s) left out: messages[0] image 1, file 3 could not be read as DICOM."
    ]
    assert_names_nobody(response)


def test_several_series_over_the_limit_are_refused_with_what_they_hold(api, medserver_settings):
    medserver_settings(max_image_count=4)
    scout = ct_slice(np.zeros((4, 4)), series="1.2.3.9", SeriesDescription="SCOUT")

    response = api.post("/api/chat", ask(dicom_uri(zipped([*ct_series(6), scout]))))

    assert response.status_code == 422
    assert error_of(response)["message"] == (
        "The DICOM files hold 2 series, 7 images in all (CT series (AX LUNG 1.25): 6; "
        "CT series (SCOUT): 1), and at most 4 fit in one message; upload one series at a time."
    )


def test_a_zip_bomb_is_refused_with_413_before_it_is_unpacked(api, medserver_settings):
    medserver_settings(max_payload_mb=1)
    bomb = zip_of({f"p{n}": bytes(MB) for n in range(21)})

    response = api.post("/api/chat", ask(dicom_uri(bomb, "application/zip")))

    assert response.status_code == 413
    assert error_of(response)["message"] == (
        "messages[0] image 1 unpacks to 21 MB; the limit is 20 MB."
    )
    assert error_of(response)["code"] == "archive_too_large"


def test_a_damaged_zip_and_an_oversized_dicom_file_are_refused(api, medserver_settings):
    damaged = api.post("/api/chat", ask(dicom_uri(b"PK\x03\x04 broken", "application/zip")))
    assert damaged.status_code == 422
    assert "could not be read as a zip file" in error_of(damaged)["message"]

    medserver_settings(max_payload_mb=1)
    large = api.post("/api/chat", ask(dicom_uri(ct_slice(np.zeros((1024, 1024))))))
    assert large.status_code == 413
    assert error_of(large)["message"] == "messages[0] image 1 is larger than 1 MB."


def test_no_room_for_any_slice_is_refused(api, medserver_settings):
    medserver_settings(max_model_len=1024)

    response = api.post("/api/chat", ask(dicom_uri(zipped(ct_series(2))), max_tokens=512))

    assert response.status_code == 422
    assert "No image fits in the model's 1,024-token context" in error_of(response)["message"]


def test_an_unknown_window_and_other_types_are_refused(api):
    slice_uri = dicom_uri(ct_slice(np.zeros((4, 4))))

    for asked in ("liver", ["lung"]):
        window = api.post("/api/chat", ask(slice_uri, dicom_window=asked))
        assert window.status_code == 422
        assert error_of(window)["param"] == "dicom_window"
        assert "auto, file, lung, mediastinum, bone, brain" in error_of(window)["message"]

    # PDFs are taken now (tests/api/test_documents.py); a Word file is not.
    word = api.post("/api/chat", ask(data_uri(b"PK\x03\x04", "application/msword")))
    assert word.status_code == 415
    assert error_of(word)["message"] == (
        "messages[0] image 1 must be a PNG, JPEG or WebP image, a PDF, a DICOM file or a zip "
        "of DICOM files."
    )


def test_analyze_refuses_a_broken_dcm_upload(api):
    broken = io.BytesIO(b"not really DICOM")
    broken.name = "scan.dcm"
    form = {"prompt": "Findings?", "images": broken}

    response = api.post("/api/analyze", form, content_type=MULTIPART_CONTENT)

    assert response.status_code == 422
    assert error_of(response)["message"] == "upload 1 could not be read as DICOM."
    assert error_of(response)["param"] == "images"


def test_the_schema_documents_dicom_and_the_window(api):
    document = api.get("/api/schema").json()
    schemas = document["components"]["schemas"]

    assert schemas["ChatRequest"]["properties"]["dicom_window"]["enum"] == [
        "auto",
        "file",
        "lung",
        "mediastinum",
        "bone",
        "brain",
    ]
    assert "application/dicom" in json.dumps(schemas["ChatMessage"])
    assert "notices" in schemas["ChatAnswer"]["properties"]
    analyze = document["paths"]["/api/analyze"]["post"]["requestBody"]["content"]
    assert "dicom_window" in analyze["multipart/form-data"]["schema"]["properties"]
