"""Compressed DICOM, as PACS exports it: RLE, JPEG 2000, JPEG Lossless and Baseline read with
the same values as uncompressed, through the module and the page's upload; a syntax
nothing here decodes, or a damaged stream, is refused by name.

The compressed files are made in the test from uncompressed ones (tests.dicom_files)
with pydicom's RLE encoder, pylibjpeg-openjpeg's JPEG 2000 encoder, Pillow's JPEG and
a small lossless JPEG encoder of the tests' own.
"""

from __future__ import annotations

import html
import io

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from pydicom.uid import MPEG2MPML, JPEG2000Lossless, RLELossless

from chat import services
from chat.models import Attachment
from imaging import dicom
from imaging.dicom.windows import MEDGEMMA_CT_WINDOWS, PRESETS
from tests.dicom_files import (
    PATIENT_TAGS,
    compressed,
    ct_slice,
    damaged,
    jpeg_baseline,
    jpeg_lossless,
    mr_slice,
    with_syntax,
    zip_of,
)

SIZE = 64  # openjpeg wants some room for its resolution levels; 8×8 is too small
JPEG_XL_LOSSLESS = "1.2.840.10008.1.2.4.110"


def ct_volume(count: int = 3) -> tuple[list[np.ndarray], list[bytes]]:
    """`count` slices whose Hounsfield units run over -1024..3071 (a ramp shifted
    per slice, air to dense bone), and their uncompressed files."""
    ramp = np.arange(SIZE * SIZE, dtype=np.int32).reshape(SIZE, SIZE)
    hu = [((ramp * 7 + 311 * n) % 4096) - 1024 for n in range(count)]
    raws = [
        ct_slice(values, instance=n + 1, position=(0, 0, 2.0 * n), **PATIENT_TAGS)
        for n, values in enumerate(hu)
    ]
    return hu, raws


def _files(raws: list[bytes]) -> list[dicom.DicomFile]:
    return [dicom.DicomFile(f"IM{n}.dcm", lambda raw=raw: raw) for n, raw in enumerate(raws)]


def _rendered(raws: list[bytes], window: str) -> list[np.ndarray]:
    (series,), problems = dicom.read_series(_files(raws))
    assert problems == []
    slices = dicom.render_series(series, list(range(len(series.frames))), window)
    return [np.asarray(Image.open(io.BytesIO(s.png))) for s in slices]


COMPRESSORS = {
    "rle": lambda raw: compressed(raw, RLELossless),
    "jpeg2000": lambda raw: compressed(raw, JPEG2000Lossless),
    # Decoded by pylibjpeg-libjpeg alone: neither pydicom nor Pillow reads it.
    "jpeg-lossless": jpeg_lossless,
}


@pytest.mark.parametrize("kind", COMPRESSORS)
def test_a_compressed_ct_series_reads_with_the_hounsfield_units_of_the_uncompressed_one(kind):
    hu, raws = ct_volume()
    packed = [COMPRESSORS[kind](raw) for raw in raws]
    assert all(len(p) < len(r) for p, r in zip(packed, raws, strict=True))  # really compressed

    for window in ("bone", "auto"):
        expected = _rendered(raws, window)
        got = _rendered(packed, window)
        for slice_hu, plain, decoded in zip(hu, expected, got, strict=True):
            assert np.array_equal(decoded, plain), window
            if window == "auto":  # red is MedGemma's wide window, -1024..1024 HU
                assert np.array_equal(decoded[..., 0], MEDGEMMA_CT_WINDOWS[0].apply(slice_hu))
            else:
                assert np.array_equal(decoded, PRESETS["bone"].apply(slice_hu))


def test_a_jpeg_baseline_image_reads_as_its_uncompressed_original():
    values = np.tile(np.arange(0, 256, 4, dtype=np.uint16), (SIZE, 1))  # 8-bit MR, a ramp
    values[:, :8] = 200  # a flat block JPEG keeps exactly
    raw = mr_slice(values, window=(128, 256))
    raw_8_bit = _as_8_bit(raw)

    (plain,) = _rendered([raw_8_bit], "auto")
    (decoded,) = _rendered([jpeg_baseline(raw_8_bit)], "auto")

    assert np.abs(decoded.astype(int) - plain.astype(int)).max() <= 2  # JPEG is lossy
    assert (decoded[:, :8] == plain[:, :8]).all()


def _as_8_bit(raw: bytes) -> bytes:
    import pydicom

    dataset = pydicom.dcmread(io.BytesIO(raw))
    dataset.set_pixel_data(dataset.pixel_array.astype(np.uint8), "MONOCHROME2", 8)
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.mark.parametrize(
    ("syntax", "named"),
    [
        (JPEG_XL_LOSSLESS, "JPEG XL Lossless (1.2.840.10008.1.2.4.110)"),
        (MPEG2MPML, "MPEG2 Main Profile / Main Level (1.2.840.10008.1.2.4.100)"),
    ],
)
def test_a_syntax_nothing_here_decodes_is_refused_by_its_name(syntax, named):
    _, raws = ct_volume(1)
    (series,), _ = dicom.read_series(_files([with_syntax(raws[0], syntax)]))

    with pytest.raises(dicom.DicomRejected) as refused:
        dicom.render_series(series, [0], "lung")

    assert str(refused.value).startswith(
        f"The image data of IM0.dcm is compressed as {named}, which MedServer cannot decode."
    )
    assert "uncompressed, JPEG (baseline, extended and lossless), JPEG-LS, JPEG 2000 and RLE" in (
        str(refused.value)
    )


def test_a_damaged_compressed_stream_is_refused_as_damaged():
    _, raws = ct_volume(1)
    broken = damaged(compressed(raws[0], JPEG2000Lossless))
    (series,), _ = dicom.read_series(_files([broken]))

    with pytest.raises(dicom.DicomRejected, match="IM0.dcm is damaged: its JPEG 2000"):
        dicom.render_series(series, [0], "lung")


# --- through the page's upload


@pytest.fixture
def session(user):
    return services.session_create(owner=user, model_name="MedGemma demo")


def _upload(client, session, raws: list[bytes], window: str):
    members = {f"{PATIENT_TAGS['PatientName']}/IM{n:04d}": raw for n, raw in enumerate(raws)}
    upload = SimpleUploadedFile("ct.zip", zip_of(members), content_type="application/zip")
    return client.post(f"/chat/{session.pk}/attachments/", {"images": [upload], "window": window})


def _stored_pixels() -> list[np.ndarray]:
    stored = Attachment.objects.order_by("created_at")
    return [np.asarray(Image.open(a.file.open("rb"))) for a in stored]


@pytest.mark.django_db
def test_a_zipped_compressed_series_uploads_as_the_uncompressed_one(client, user, session):
    client.force_login(user)
    hu, raws = ct_volume()
    _upload(client, session, raws, "bone")
    expected = _stored_pixels()
    assert [PRESETS["bone"].apply(h).tolist() for h in hu] == [e.tolist() for e in expected]

    for kind, compress in COMPRESSORS.items():
        Attachment.objects.all().delete()

        response = _upload(client, session, [compress(r) for r in raws], "bone")

        assert response.status_code == 200
        assert "alert-error" not in response.content.decode()
        got = _stored_pixels()
        assert len(got) == 3
        assert all(np.array_equal(g, e) for g, e in zip(got, expected, strict=True)), kind


@pytest.mark.django_db
def test_an_undecodable_upload_is_refused_by_name_and_stores_nothing(client, user, session):
    client.force_login(user)
    _, raws = ct_volume(2)

    response = _upload(client, session, [with_syntax(r, JPEG_XL_LOSSLESS) for r in raws], "lung")

    shown = html.unescape(response.content.decode())
    assert "is compressed as JPEG XL Lossless (1.2.840.10008.1.2.4.110)" in shown
    assert "export the series uncompressed" not in shown
    assert Attachment.objects.count() == 0
