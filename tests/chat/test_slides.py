"""Whole-slide images: a generated Aperio slide (pyramid, thumbnail, label and macro
images, properties naming the patient) becomes tissue patches at the chosen
magnification and an overview for the clinician; the label, the macro and the
properties are never stored; the model gets the patches, never the overview."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import numpy as np
import openslide
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from chat import selectors, services
from chat.models import Attachment
from imaging import slides
from imaging.budget import ImageBudget
from imaging.slides import PATCH_PX, SlideRejected, patches_for_message
from tests.slide_files import (
    LABEL_COLOUR,
    MACRO_COLOUR,
    PATIENT_ON_LABEL,
    PROPERTY_TEXT,
    glass_slide,
    plain_tiff,
    tissue_slide,
)

BUDGET = ImageBudget(context_tokens=8192, image_tokens=256, max_images=10)


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)


def _luminance(png: bytes) -> float:
    return float(np.asarray(Image.open(io.BytesIO(png)).convert("L")).mean())


def _has_colour(png: bytes, colour) -> bool:
    return bool(np.all(np.abs(_pixels(png) - np.array(colour)) <= 3, axis=-1).any())


def test_the_generated_slide_really_carries_a_label_and_a_macro(tmp_path):
    """The fixture is what the other tests need: OpenSlide finds its label and macro."""
    path = tmp_path / "slide.svs"
    path.write_bytes(tissue_slide()[0])
    slide = openslide.OpenSlide(path)

    assert {"label", "macro"} <= set(slide.associated_images)
    assert _has_colour(_png(slide.associated_images["label"]), LABEL_COLOUR)
    assert slide.level_count == 2 and slide.properties["openslide.objective-power"] == "10"


def _png(picture: Image.Image) -> bytes:
    out = io.BytesIO()
    picture.convert("RGB").save(out, format="PNG")
    return out.getvalue()


def test_patches_are_taken_from_tissue_only_in_their_spatial_order():
    raw, mask = tissue_slide()

    found = patches_for_message(raw, name="Upload 1", budget=BUDGET, answer_tokens=512)

    assert len(found.patches) >= 4
    regions = [patch.facts["region"] for patch in found.patches]
    for patch, (x, y, w, h) in zip(found.patches, regions, strict=True):
        assert (w, h) == (896, 896)  # a 10× scan read at 10×
        assert mask[y : y + h, x : x + w].mean() > 0.3, (x, y)  # over tissue, not glass
        assert _luminance(patch.png) < 0.8 * 255
        assert Image.open(io.BytesIO(patch.png)).size == (PATCH_PX, PATCH_PX)
    assert regions == sorted(regions, key=lambda r: (r[1], r[0]))  # row by row
    assert [p.label for p in found.patches][:2] == [
        f"Slide patch 1 of {len(found.patches)} (10×)",
        f"Slide patch 2 of {len(found.patches)} (10×)",
    ]
    # Each cell of glass in the grid was skipped.
    cells = {(x // 896, y // 896) for x, y, _, _ in regions}
    for column in range(3584 // 896):
        for row in range(2688 // 896):
            block = mask[row * 896 : (row + 1) * 896, column * 896 : (column + 1) * 896]
            if block.mean() == 0:
                assert (column, row) not in cells


def test_a_5x_patch_covers_twice_the_tissue_of_a_10x_one():
    raw, _ = tissue_slide(blobs=((1800, 1800, 1700, 1700),), width=3584, height=3584)

    found = patches_for_message(
        raw, name="Upload 1", budget=BUDGET, answer_tokens=512, magnification="5"
    )

    assert {tuple(p.facts["region"][2:]) for p in found.patches} == {(1792, 1792)}
    assert found.patches[0].label.endswith("(5×)")


def test_no_more_patches_than_fit_the_message_and_it_says_so():
    raw, _ = tissue_slide(blobs=((1800, 1350, 1800, 1400),))
    small = ImageBudget(context_tokens=8192, image_tokens=256, max_images=3)

    found = patches_for_message(raw, name="Upload 1", budget=small, answer_tokens=512)

    assert len(found.patches) == 3
    assert "tissue patches at 10×, 3 attached" in found.notices[0]


def test_the_overview_shows_the_slide_with_the_patches_outlined_and_nothing_of_the_label():
    raw, _ = tissue_slide()

    found = patches_for_message(raw, name="Upload 1", budget=BUDGET, answer_tokens=512)

    assert _has_colour(found.overview_png, (230, 159, 0))  # the outlines
    assert not _has_colour(found.overview_png, LABEL_COLOUR)
    assert not _has_colour(found.overview_png, MACRO_COLOUR)
    assert "not sent to the model" in found.overview_label


def test_a_slide_of_glass_only_is_refused():
    with pytest.raises(SlideRejected, match="shows no tissue"):
        patches_for_message(glass_slide(), name="Upload 1", budget=BUDGET, answer_tokens=512)


def test_a_plain_tiff_picture_is_refused_with_what_to_do():
    with pytest.raises(SlideRejected, match="saved as PNG or JPEG"):
        patches_for_message(plain_tiff(), name="Upload 2", budget=BUDGET, answer_tokens=512)


def test_no_temporary_copy_of_the_slide_is_left_behind():
    before = set(Path(tempfile.gettempdir()).glob("medserver-slide-*"))
    patches_for_message(tissue_slide()[0], name="Upload 1", budget=BUDGET, answer_tokens=512)
    with pytest.raises(SlideRejected):
        patches_for_message(plain_tiff(), name="Upload 1", budget=BUDGET, answer_tokens=512)

    assert set(Path(tempfile.gettempdir()).glob("medserver-slide-*")) == before


# --- through the chat page


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def session(user):
    return services.session_create(owner=user, model_name="demo")


def _upload(client, session, upload, **data):
    return client.post(f"/chat/{session.pk}/attachments/", {"images": [upload], **data})


@pytest.mark.django_db
def test_an_uploaded_slide_stores_tissue_patches_and_an_overview_and_no_label(
    signed_in, session, settings
):
    raw, _ = tissue_slide()
    upload = SimpleUploadedFile("DOE_JANE.svs", raw, content_type="application/octet-stream")

    response = _upload(signed_in, session, upload)

    assert response.status_code == 200
    stored = list(Attachment.objects.order_by("created_at"))
    patches = [a for a in stored if a.for_model]
    (overview,) = [a for a in stored if not a.for_model]
    assert len(patches) >= 4 and len({a.batch for a in stored}) == 1
    assert all(a.dicom["kind"] == "slide patch" for a in patches)
    files = {p.name: p.read_bytes() for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()}
    assert len(files) == len(stored)
    for data in files.values():
        assert data.startswith(b"\x89PNG")
        assert not any(chunk in data for chunk in (b"tEXt", b"iTXt", b"zTXt", b"eXIf"))
        assert not _has_colour(data, LABEL_COLOUR) and not _has_colour(data, MACRO_COLOUR)
    for patch in patches:
        assert _luminance(patch.file.read()) < 0.8 * 255
    rows = json.dumps(list(Attachment.objects.values()), default=str)
    for text in (*PROPERTY_TEXT, "DOE", PATIENT_ON_LABEL, "Aperio", "svs"):
        assert text.lower() not in rows.lower(), text
    page = response.content.decode()
    assert f'id="pending-{overview.pk}"' in page and "is-overview" in page
    assert "DOE" not in page


@pytest.mark.django_db
def test_the_model_gets_the_patches_and_never_the_overview(signed_in, session):
    _upload(signed_in, session, SimpleUploadedFile("s.svs", tissue_slide()[0]))
    ids = list(Attachment.objects.values_list("pk", flat=True))

    _, answer = services.message_send(session=session, content="Describe.", attachment_ids=ids)

    (turn,) = selectors.conversation_before(answer)
    patches = Attachment.objects.filter(for_model=True).order_by("created_at")
    assert turn.images == tuple(Path(a.file.path) for a in patches)
    assert turn.image_labels[0] == f"Slide patch 1 of {patches.count()} (10×)"


@pytest.mark.django_db
def test_the_magnification_chosen_in_the_settings_is_used(signed_in, session):
    raw, _ = tissue_slide(blobs=((1800, 1800, 1700, 1700),), width=3584, height=3584)

    _upload(signed_in, session, SimpleUploadedFile("s.svs", raw), magnification="5")

    labels = Attachment.objects.filter(for_model=True).values_list("label", flat=True)
    assert labels and all(label.endswith("(5×)") for label in labels)
    page = signed_in.get(f"/chat/{session.pk}/").content.decode()
    assert '<select id="slide-magnification" name="magnification" form="upload-form">' in page


@pytest.mark.django_db
def test_a_slide_over_the_upload_limit_is_refused_and_stores_nothing(
    signed_in, session, medserver_settings
):
    medserver_settings(max_payload_mb=1)
    raw = tissue_slide()[0] + bytes(1024 * 1024)

    response = _upload(signed_in, session, SimpleUploadedFile("s.svs", raw))

    assert "Upload 1 is larger than 1 MB." in response.content.decode()
    assert not Attachment.objects.exists()


@pytest.mark.django_db
def test_a_broken_slide_is_refused_with_a_message_and_others_are_kept(signed_in, session):
    good = SimpleUploadedFile("good.svs", tissue_slide()[0])
    bad = SimpleUploadedFile("bad.tif", plain_tiff())

    response = signed_in.post(f"/chat/{session.pk}/attachments/", {"images": [good, bad]})

    assert "Upload 2 could not be read as a whole-slide image" in response.content.decode()
    assert Attachment.objects.filter(for_model=True).count() >= 4


def test_a_slide_without_a_small_enough_level_is_refused_before_it_is_read_whole(
    monkeypatch,
):
    # The fixture's overview would come from its 3584×2688 level 0: over a lower bound.
    monkeypatch.setattr(slides, "MAX_VIEW_READ_PIXELS", 5_000_000)

    with pytest.raises(SlideRejected, match="has no low-resolution level"):
        patches_for_message(tissue_slide()[0], name="Upload 1", budget=BUDGET, answer_tokens=512)
