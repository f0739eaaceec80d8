"""DICOM uploads: windowing, series order, sampling, de-identification, zips, the upload view.

Every fixture is a real DICOM file written with pydicom (tests.dicom_files): a CT
series with Hounsfield units stored with a rescale intercept of -1024, MR slices, a
multi-frame file, and files carrying a patient's name, IDs and institution.
"""

from __future__ import annotations

import html
import io
import json
import random
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from pydicom.dataset import Dataset

from chat import selectors, services
from chat.models import Attachment
from chat.services.attachments import images_that_fit
from imaging import dicom
from imaging.archives import MAX_MEMBERS, ArchiveRejected, zip_members
from imaging.dicom.windows import MEDGEMMA_CT_WINDOWS, PRESETS
from inference.engine import Finished, GenerationRequest
from inference.prompting import build_messages
from inference.registry import MODELS
from tests.dicom_files import (
    IDENTIFYING_TEXT,
    PATIENT_TAGS,
    ct_series,
    ct_slice,
    dicom_file,
    mr_slice,
    multiframe_ct,
    zip_of,
)

MB = 1024 * 1024


def _files(*raws: bytes) -> list[dicom.DicomFile]:
    return [dicom.DicomFile(f"file{n}.dcm", lambda raw=raw: raw) for n, raw in enumerate(raws)]


def _one_series(*raws: bytes) -> dicom.Series:
    found, problems = dicom.read_series(_files(*raws))
    assert problems == []
    (series,) = found
    return series


def _pixels(rendered: dicom.RenderedSlice) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(rendered.png)))


# --- windowing


def test_ct_is_rescaled_to_hounsfield_units_and_windowed_with_each_preset():
    # Values chosen to land on whole gray levels: low edge, inside, high edge.
    cases = {
        "lung": ([-1350, -1050, 150], [0, 51, 255]),  # -600/1500: -1350..150 HU
        "mediastinum": ([-125, 15, 225], [0, 102, 255]),  # 50/350: -125..225 HU
        "bone": ([-500, 220, 1300], [0, 102, 255]),  # 400/1800: -500..1300 HU
        "brain": ([0, 16, 80], [0, 51, 255]),  # 40/80: 0..80 HU
    }
    for preset, (hu, expected) in cases.items():
        series = _one_series(ct_slice([hu, hu]))

        (rendered,) = dicom.render_series(series, [0], preset)

        assert _pixels(rendered)[0].tolist() == expected, preset
        window = PRESETS[preset]
        assert rendered.facts["window"] == {
            "name": preset,
            "center": (window.low + window.high) / 2,
            "width": window.high - window.low,
        }
        assert rendered.label == f"CT image, AX LUNG 1.25 ({preset} window)"


def test_values_outside_the_window_are_clipped():
    series = _one_series(ct_slice([[-3024, -2000, 3000, 3071]]))

    (rendered,) = dicom.render_series(series, [0], "brain")

    assert _pixels(rendered)[0].tolist() == [0, 0, 255, 255]


def test_ct_by_default_uses_medgemmas_three_windows_as_rgb():
    series = _one_series(ct_slice([[-1024, 64, 1100]]))

    (rendered,) = dicom.render_series(series, [0])

    # wide -1024..1024, soft tissue -135..215, brain 0..80 (Google's CT notebook)
    assert _pixels(rendered)[0].tolist() == [[0, 0, 0], [135, 145, 204], [255, 255, 255]]
    assert [c["name"] for c in rendered.facts["window"]["channels"]] == [
        w.name for w in MEDGEMMA_CT_WINDOWS
    ]
    assert rendered.label.endswith("(MedGemma CT windows as RGB)")


def test_mr_uses_the_window_center_and_width_in_its_file():
    series = _one_series(mr_slice([[0, 150, 300, 600, 900]], window=(300, 600)))

    (rendered,) = dicom.render_series(series, [0])

    assert _pixels(rendered)[0].tolist() == [0, 64, 128, 255, 255]
    assert rendered.facts["window"] == {"name": "file", "center": 300.0, "width": 600.0}
    assert rendered.label == "MR image, AX T2 FLAIR (window from the file, 300/600)"


def test_presets_apply_to_ct_only():
    series = _one_series(mr_slice([[0, 150, 300, 600]], window=(300, 600)))

    (rendered,) = dicom.render_series(series, [0], "lung")

    assert rendered.facts["window"]["name"] == "file"


def test_without_a_window_the_series_range_is_shared_by_its_slices():
    faint = np.tile(np.arange(0, 100, dtype=np.uint16), (10, 1))
    bright = faint * 2
    series = _one_series(mr_slice(faint, instance=1), mr_slice(bright, instance=2))

    faint_image, bright_image = dicom.render_series(series, [0, 1])

    assert bright_image.facts["window"] == faint_image.facts["window"]
    assert faint_image.facts["window"]["name"] == "range"
    assert _pixels(bright_image).max() == 255
    # One window for both: the faint slice stays about half as bright.
    assert 120 <= _pixels(faint_image).max() <= 135
    assert _pixels(faint_image).min() == 0


def test_monochrome1_is_shown_inverted():
    series = _one_series(mr_slice([[0, 600]], window=(300, 600), photometric="MONOCHROME1"))

    (rendered,) = dicom.render_series(series, [0])

    assert _pixels(rendered)[0].tolist() == [255, 0]


def test_a_multiframe_file_gives_one_slice_per_frame_in_order():
    frames = [np.full((4, 4), hu) for hu in (-500, 220, 1300)]
    series = _one_series(multiframe_ct(frames, positions=[30, 20, 10]))

    rendered = dicom.render_series(series, [0, 1, 2], "bone")

    # The rescale is in the shared functional group; the bone window is -500..1300 HU.
    assert [int(_pixels(r)[0, 0]) for r in rendered] == [0, 102, 255]
    assert [r.facts["frame"] for r in rendered] == [1, 2, 3]
    assert [r.label for r in rendered] == [f"CT slice {n} of 3 (bone window)" for n in (1, 2, 3)]
    assert rendered[0].facts["pixel_spacing_mm"] == [0.5, 0.5]
    assert rendered[0].facts["slice_thickness_mm"] == 2.0


# --- series order and sampling


def test_series_is_ordered_by_instance_number_whatever_order_the_files_come_in():
    slices = ct_series(6)
    random.Random(4).shuffle(slices)

    series = _one_series(*slices)

    assert [frame.instance_number for frame in series.frames] == [1, 2, 3, 4, 5, 6]


def test_without_instance_numbers_the_series_is_ordered_along_the_slice_normal():
    # Sagittal slices: rows along +y, columns along -z, so the normal is -x.
    sagittal = (0, 1, 0, 0, 0, -1)
    slices = {
        x: ct_slice(
            np.full((4, 4), int(x)), instance=None, position=(x, 0, 0), orientation=sagittal
        )
        for x in (10.0, -5.0, 20.0, 0.0)
    }

    series = _one_series(*slices.values())

    assert [frame.position[0] for frame in series.frames] == [20.0, 10.0, 0.0, -5.0]


def test_repeated_instance_numbers_fall_back_to_position():
    slices = [ct_slice(np.zeros((4, 4)), instance=1, position=(0, 0, z)) for z in (4, -2, 9)]

    series = _one_series(*slices)

    assert [frame.position[2] for frame in series.frames] == [-2, 4, 9]


def test_files_of_different_series_are_grouped_apart():
    first = ct_series(2, SeriesNumber=3)
    second = [ct_slice(np.zeros((4, 4)), series="1.2.3.4", instance=1, SeriesNumber=2)]

    found, _ = dicom.read_series(_files(first[0], second[0], first[1]))

    assert [(s.number, len(s.frames)) for s in found] == [(2, 1), (3, 2)]


@pytest.mark.parametrize(
    ("count", "limit", "expected"),
    [
        (5, 10, [0, 1, 2, 3, 4]),
        (7, 1, [3]),
        (9, 3, [0, 4, 8]),
        (10, 4, [0, 3, 6, 9]),
    ],
)
def test_sample_evenly(count, limit, expected):
    assert dicom.sample_evenly(count, limit) == expected


def test_sampling_a_long_series_keeps_both_ends_and_even_steps():
    picked = dicom.sample_evenly(120, 20)

    assert len(picked) == 20 and picked[0] == 0 and picked[-1] == 119
    steps = {b - a for a, b in zip(picked, picked[1:], strict=False)}
    assert steps <= {6, 7}


def test_a_sampled_slice_is_labelled_with_its_place_in_the_whole_series():
    series = _one_series(*ct_series(9))

    rendered = dicom.render_series(series, dicom.sample_evenly(9, 3), "lung")

    assert [r.label for r in rendered] == [
        f"CT slice {n} of 9, AX LUNG 1.25 (lung window)" for n in (1, 5, 9)
    ]
    assert [r.facts["instance_number"] for r in rendered] == [1, 5, 9]


# --- de-identification


def _png_chunks(png: bytes) -> list[bytes]:
    chunks, offset = [], 8
    while offset < len(png):
        length = int.from_bytes(png[offset : offset + 4], "big")
        chunks.append(png[offset + 4 : offset + 8])
        offset += length + 12
    return chunks


def test_nothing_identifying_is_kept_from_a_file_with_patient_tags():
    raw = ct_slice(np.zeros((8, 8)), SeriesDescription="CHEST Doe Jane", **PATIENT_TAGS)
    series = _one_series(raw)

    for window in ("auto", "lung", "file"):
        (rendered,) = dicom.render_series(series, [0], window)
        stored_text = json.dumps(rendered.facts) + rendered.label
        for text in IDENTIFYING_TEXT:
            assert text.lower() not in stored_text.lower(), text
            assert text.encode() not in rendered.png, text
        # The image is pixels only: no text chunk, nothing of the header.
        assert _png_chunks(rendered.png) == [b"IHDR", b"IDAT", b"IEND"]
    assert set(rendered.facts) <= {
        "modality",
        "body_part",
        "series_description",
        "slice_thickness_mm",
        "pixel_spacing_mm",
        "spacing_between_slices_mm",
        "instance_number",
        "frame",
        "slice",
        "slices",
        "window",
    }
    assert "series_description" not in rendered.facts  # it held the patient's name


def test_a_series_description_naming_nobody_is_kept():
    series = _one_series(ct_slice(np.zeros((4, 4)), SeriesDescription="AX T2", **PATIENT_TAGS))

    assert series.facts["series_description"] == "AX T2"


def test_a_series_description_with_a_long_number_is_dropped():
    series = _one_series(ct_slice(np.zeros((4, 4)), SeriesDescription="CT 20240112 follow-up"))

    assert "series_description" not in series.facts


def test_a_file_with_details_burned_into_its_pixels_is_refused():
    raw = ct_slice(np.zeros((4, 4)), BurnedInAnnotation="YES")

    found, problems = dicom.read_series(_files(raw))

    assert found == []
    assert problems == [
        "file0.dcm says it has patient details burned into the image, so it was not stored; "
        "export it without annotations."
    ]


# --- broken files


def test_a_broken_file_is_reported_not_raised():
    truncated = ct_slice(np.zeros((64, 64)))[:700]
    junk = dicom.DicomFile("notes.dcm", lambda: b"Patient notes, not an image", force=True)

    found, problems = dicom.read_series([*_files(truncated), junk])

    assert found == []
    assert len(problems) == 2
    assert all("could not be read as DICOM" in p or "holds no image" in p for p in problems)


def test_a_dicom_file_without_pixels_is_reported():
    report = Dataset()
    report.Modality = "SR"
    raw = dicom_file(report, "1.2.840.10008.5.1.4.1.1.88.11")

    found, problems = dicom.read_series(_files(raw))

    assert found == []
    assert problems == ["file0.dcm holds no image (a report, a directory or a broken file)."]


# --- zips


def test_zip_members_leave_out_folders_and_system_files():
    raw = zip_of(
        {
            "STUDY/SERIES/IM1": b"a",
            "STUDY/SERIES/IM2": b"b",
            "__MACOSX/STUDY/._IM1": b"c",
            "STUDY/.DS_Store": b"d",
            "DICOMDIR": b"e",
        }
    )

    members = zip_members(raw, name="study.zip", max_bytes=MB)

    # Named by their place in the zip: paths often hold the patient's name.
    assert [m.name for m in members] == ["study.zip, file 1", "study.zip, file 2"]
    assert [m.read() for m in members] == [b"a", b"b"]


def test_a_zip_bomb_is_refused_before_anything_is_unpacked():
    raw = zip_of({f"part{n}": bytes(MB) for n in range(25)})  # 25 MB of zeros, a few KB zipped

    with pytest.raises(ArchiveRejected, match=r"bomb.zip unpacks to 25 MB; the limit is 20 MB\."):
        zip_members(raw, name="bomb.zip", max_bytes=MB)


def test_a_zip_of_too_many_files_is_refused():
    raw = zip_of({f"f{n}": b"" for n in range(MAX_MEMBERS + 1)})

    with pytest.raises(ArchiveRejected, match="at most 5,000 are accepted"):
        zip_members(raw, name="many.zip", max_bytes=MB)


def test_a_member_larger_than_the_upload_limit_is_refused():
    raw = zip_of({"big.dcm": bytes(2 * MB)})

    with pytest.raises(ArchiveRejected, match="holds a file of 2.0 MB; the limit is 1 MB per file"):
        zip_members(raw, name="big.zip", max_bytes=MB)


def test_a_damaged_zip_is_refused():
    with pytest.raises(ArchiveRejected, match="could not be read as a zip file"):
        zip_members(b"PK\x03\x04 broken", name="damaged.zip", max_bytes=MB)


# --- uploads through the page


@pytest.fixture
def session(user):
    return services.session_create(owner=user, model_name="MedGemma demo")


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def _upload(client, session, *files, window=""):
    data = {"images": list(files)}
    if window:
        data["window"] = window
    return client.post(f"/chat/{session.pk}/attachments/", data)


def _shown(response) -> str:
    """The text of the response as the page shows it (entities decoded)."""
    return html.unescape(response.content.decode())


def _zip_upload(name: str, raws: list[bytes]) -> SimpleUploadedFile:
    members = {f"{PATIENT_TAGS['PatientName']}/IM{n:04d}": raw for n, raw in enumerate(raws)}
    return SimpleUploadedFile(name, zip_of(members), content_type="application/zip")


@pytest.mark.django_db
def test_uploading_a_zipped_series_stores_labelled_slices_in_order(signed_in, session):
    raws = ct_series(4, **PATIENT_TAGS)
    random.Random(1).shuffle(raws)

    response = _upload(signed_in, session, _zip_upload("ct.zip", raws), window="lung")

    assert response.status_code == 200
    stored = list(Attachment.objects.order_by("created_at"))
    assert [a.label for a in stored] == [
        f"CT slice {n} of 4, AX LUNG 1.25 (lung window)" for n in (1, 2, 3, 4)
    ]
    assert all(a.content_type == "image/png" and a.message is None for a in stored)
    assert [a.dicom["instance_number"] for a in stored] == [1, 2, 3, 4]
    assert stored[0].dicom["modality"] == "CT" and stored[0].dicom["body_part"] == "CHEST"
    page = _shown(response)
    for attachment in stored:
        assert str(attachment.pk) in page
        assert f'alt="{attachment.label}"' in page  # the thumbnail says which slice it is
    assert "alert-error" not in page


@pytest.mark.django_db
def test_nothing_identifying_reaches_the_database_or_the_stored_files(signed_in, session, settings):
    raws = ct_series(3, **PATIENT_TAGS)

    _upload(signed_in, session, _zip_upload("ct.zip", raws))
    single = SimpleUploadedFile("Doe_Jane.dcm", raws[0], content_type="application/dicom")
    _upload(signed_in, session, single)

    stored = list(Attachment.objects.values())
    assert len(stored) == 4
    text = json.dumps(stored, default=str).lower()
    paths = [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]
    # Each slice's PNG, and each series' kept values (one per upload: imaging.dicom.volume).
    pngs = [p.read_bytes() for p in paths if p.suffix == ".png"]
    volumes = [p for p in paths if p.suffix == ".npz"]
    unpacked = []
    assert (len(pngs), len(volumes), len(paths)) == (4, 2, 6)
    for volume in volumes:
        with np.load(volume, allow_pickle=False) as kept:
            members = {name: kept[name] for name in kept.files}
        facts = members.pop("facts").tobytes().decode()
        assert all(array.dtype == np.int16 for array in members.values())
        text += facts.lower()
        unpacked.append(b"".join(array.tobytes() for array in members.values()) + facts.encode())
    for identifying in IDENTIFYING_TEXT:
        assert identifying.lower() not in text, identifying
        assert all(identifying.encode() not in data for data in pngs + unpacked), identifying
    assert all(data.startswith(b"\x89PNG") and b"DICM" not in data for data in pngs)
    assert all(b"DICM" not in data for data in unpacked)


@pytest.mark.django_db
def test_a_series_longer_than_a_message_may_carry_is_sampled_and_says_so(
    signed_in, session, medserver_settings
):
    medserver_settings(max_image_count=5)

    response = _upload(signed_in, session, _zip_upload("ct.zip", ct_series(12)))

    stored = list(Attachment.objects.order_by("created_at"))
    assert [a.dicom["slice"] for a in stored] == [1, 4, 7, 9, 12]  # first and last kept
    assert stored[1].label.startswith("CT slice 4 of 12")
    assert (
        "CT series (AX LUNG 1.25): 12 slices, 5 evenly spaced attached (the most that one "
        "message may carry, with its other images (at most 5))."
    ) in _shown(response)


@pytest.mark.django_db
def test_a_series_longer_than_the_context_allows_is_sampled_to_what_fits(
    signed_in, session, medserver_settings
):
    # The demo model's images take 4 tokens: (600 - 12 answer - 512 text) // 4 = 19.
    medserver_settings(max_model_len=600, max_image_count=100)
    session.thinking = False  # thinking would double the answer's room
    session.save()
    assert images_that_fit(session) == 19

    response = _upload(signed_in, session, _zip_upload("ct.zip", ct_series(40)))

    assert Attachment.objects.count() == 19
    assert (
        "40 slices, 19 evenly spaced attached (the most that fit in the model's "
        "600-token context with room for the answer)."
    ) in _shown(response)


@pytest.mark.django_db
def test_medgemma_4b_fits_22_slices_in_the_default_context(session, medserver_settings):
    medserver_settings(model="4", max_new_tokens=0, max_model_len=8192)

    # 8192 tokens, less 2048 for the answer and 512 for the text, at 256 per image.
    assert images_that_fit(session) == 22


@pytest.mark.django_db
def test_several_series_over_the_limit_are_refused_with_what_they_hold(
    signed_in, session, medserver_settings
):
    medserver_settings(max_image_count=4)
    scout = ct_slice(np.zeros((4, 4)), series="1.2.3.9", SeriesDescription="SCOUT")

    response = _upload(signed_in, session, _zip_upload("study.zip", [*ct_series(6), scout]))

    assert Attachment.objects.count() == 0
    assert (
        "The DICOM files hold 2 series, 7 images in all (CT series (AX LUNG 1.25): 6; "
        "CT series (SCOUT): 1), and at most 4 fit in one message; upload one series at a time."
    ) in _shown(response)


@pytest.mark.django_db
def test_a_zip_over_the_limits_is_refused_and_stores_nothing(
    signed_in, session, medserver_settings
):
    medserver_settings(max_payload_mb=1)
    bomb = SimpleUploadedFile("bomb.zip", zip_of({f"p{n}": bytes(MB) for n in range(21)}))

    response = _upload(signed_in, session, bomb)

    assert "Upload 1 unpacks to 21 MB; the limit is 20 MB." in _shown(response)
    assert Attachment.objects.count() == 0


@pytest.mark.django_db
def test_a_broken_dicom_upload_is_refused_with_a_message(signed_in, session):
    broken = SimpleUploadedFile("scan.dcm", b"not really DICOM")

    response = _upload(signed_in, session, broken)

    assert "Upload 1 could not be read as DICOM." in _shown(response)
    assert Attachment.objects.count() == 0


@pytest.mark.django_db
def test_a_zip_with_some_broken_files_keeps_the_rest_and_says_so(signed_in, session):
    upload = SimpleUploadedFile("ct.zip", zip_of({"a.dcm": ct_slice(np.zeros((4, 4))), "b": b"x"}))

    response = _upload(signed_in, session, upload)

    assert Attachment.objects.count() == 1
    assert "1 file(s) left out: Upload 1, file 2 could not be read as DICOM." in _shown(response)


@pytest.mark.django_db
def test_a_series_chosen_file_by_file_counts_as_one_series(signed_in, session):
    # More files than Django takes in one request by default (100).
    files = [
        SimpleUploadedFile(f"IM{n}.dcm", raw, content_type="application/dicom")
        for n, raw in enumerate(ct_series(150))
    ]

    response = _upload(signed_in, session, *files)

    assert response.status_code == 200
    stored = Attachment.objects.order_by("created_at")
    assert [a.dicom["slice"] for a in stored] == [1, 18, 34, 51, 67, 84, 100, 117, 133, 150]
    assert "150 slices, 10 evenly spaced attached" in _shown(response)


# --- the label reaches the model


@pytest.mark.django_db
def test_slice_labels_reach_the_model_after_each_image(signed_in, session, user):
    _upload(signed_in, session, _zip_upload("ct.zip", ct_series(2)), window="brain")
    ids = list(Attachment.objects.order_by("created_at").values_list("pk", flat=True))
    _, answer = services.message_send(session=session, content="Findings?", attachment_ids=ids)

    (turn,) = selectors.conversation_before(answer)
    request = GenerationRequest(turns=(turn,))
    messages = build_messages(request, MODELS["4"], lambda source, n: {"type": "image", "n": n})

    assert turn.image_labels == (
        "CT slice 1 of 2, AX LUNG 1.25 (brain window)",
        "CT slice 2 of 2, AX LUNG 1.25 (brain window)",
    )
    assert messages[0]["content"] == [
        {"type": "image", "n": 1},
        {"type": "text", "text": "CT slice 1 of 2, AX LUNG 1.25 (brain window)"},
        {"type": "image", "n": 2},
        {"type": "text", "text": "CT slice 2 of 2, AX LUNG 1.25 (brain window)\n\nFindings?"},
    ]


@pytest.mark.django_db
def test_an_edited_question_keeps_its_slice_labels(signed_in, session):
    _upload(signed_in, session, _zip_upload("ct.zip", ct_series(2)))
    ids = list(Attachment.objects.values_list("pk", flat=True))
    question, answer = services.message_send(
        session=session, content="Findings?", attachment_ids=ids
    )
    finished = Finished("stop", 50, 20, 0.25, 1.5)
    services.answer_finish(
        answer.pk, content="None.", thinking="", finished=finished, engine="transformers"
    )

    edited, _ = services.message_edit(message=question, content="Any nodules?")

    assert sorted(a.label for a in edited.attachments.all()) == sorted(
        a.label for a in question.attachments.all()
    )
    assert all(a.dicom["modality"] == "CT" for a in edited.attachments.all())


@pytest.mark.django_db
def test_the_page_shows_each_slice_label_under_its_thumbnail(signed_in, session):
    _upload(signed_in, session, _zip_upload("ct.zip", ct_series(2)), window="mediastinum")
    ids = list(Attachment.objects.values_list("pk", flat=True))
    services.message_send(session=session, content="Findings?", attachment_ids=ids)

    page = _shown(signed_in.get(f"/chat/{session.pk}/"))

    for n in (1, 2):
        label = f"CT slice {n} of 2, AX LUNG 1.25 (mediastinum window)"
        assert f'<span class="thumb-label">{label}</span>' in page
        assert f'alt="{label}"' in page


@pytest.mark.django_db
def test_the_composer_offers_the_ct_windows_for_the_upload(signed_in, session):
    page = _shown(signed_in.get(f"/chat/{session.pk}/"))

    # In the chat settings, not under the composer (most chats never need it).
    assert '<select id="dicom-window" name="window" form="upload-form">' in page
    composer_footer = page.split('class="composer-footer"')[1].split("</footer>")[0]
    assert 'name="window"' not in composer_footer
    for value in ("auto", "file", "lung", "mediastinum", "bone", "brain"):
        assert f'<option value="{value}">' in page


@pytest.mark.django_db
def test_a_dicom_file_over_the_upload_limit_is_refused(signed_in, session, medserver_settings):
    medserver_settings(max_payload_mb=1)
    large = SimpleUploadedFile("large.dcm", ct_slice(np.zeros((1024, 1024))))

    response = _upload(signed_in, session, large)

    assert "Upload 1 is larger than 1 MB." in _shown(response)
    assert Attachment.objects.count() == 0
