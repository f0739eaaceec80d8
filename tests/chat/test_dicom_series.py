"""A DICOM series kept whole: its values (imaging.dicom.volume), the viewer's reads of
them (chat.series, its endpoints) and choosing other slices before sending
(chat.services.series, its endpoint)."""

from __future__ import annotations

import datetime
import html
import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.uid import RLELossless, SecondaryCaptureImageStorage

from chat import attachment_files, services
from chat.errors import Rejected
from chat.models import Attachment
from chat.services.series import series_slices_choose
from imaging import dicom
from imaging.dicom.volume import NotWindowable, Volume, pick_range, volume_write
from tests.dicom_files import compressed, ct_series, ct_slice, damaged, dicom_file, mr_slice, zip_of


def _series(*raws: bytes) -> dicom.Series:
    files = [dicom.DicomFile(f"file{n}.dcm", lambda raw=raw: raw) for n, raw in enumerate(raws)]
    (series,), problems = dicom.read_series(files)
    assert problems == []
    return series


def _kept(series: dicom.Series, window: str = "auto") -> Volume:
    out = io.BytesIO()
    volume_write(series, out, window=window)
    out.seek(0)
    return Volume(out)


# --- the kept values


def test_a_kept_ct_series_holds_the_exact_hounsfield_units_of_every_slice():
    hu = np.array([[-1024, -600, 0], [40, 400, 3071]])
    series = _series(*(ct_slice(hu + n, instance=n, position=(0, 0, n)) for n in range(1, 6)))

    volume = _kept(series)

    assert volume.count == 5
    for n in range(5):
        assert volume.values(n).tolist() == (hu + n + 1).tolist()
        assert volume.stored(n).dtype == np.int16
    assert volume.facts.series["modality"] == "CT"
    assert [s.instance_number for s in volume.facts.slices] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("window", ["auto", "lung", "brain", "file"])
def test_slices_rendered_from_the_kept_series_are_those_rendered_from_the_files(window):
    series = _series(*ct_series(6))
    picked = [0, 2, 5]

    direct = dicom.render_series(series, picked, window)
    kept = _kept(series, window).render(picked)

    assert [s.png for s in kept] == [s.png for s in direct]
    assert [s.label for s in kept] == [s.label for s in direct]
    assert [s.facts for s in kept] == [s.facts for s in direct]


def test_sixteen_bit_values_beyond_int16_are_kept_exactly():
    values = np.array([[0, 1, 32767, 40000, 65535]], dtype=np.uint16)
    series = _series(mr_slice(values, window=(30000, 60000)))

    volume = _kept(series)

    assert volume.values(0).tolist() == values.astype(float).tolist()
    assert volume.facts.slices[0].file_window == (30000.0, 60000.0)
    (direct,) = dicom.render_series(series, [0])
    assert volume.render([0])[0].png == direct.png


def test_fractional_values_are_kept_to_within_a_65535th_of_their_range():
    # Stored 0..2047 with a slope of 0.37: values from -3.1 to 754.29, none whole.
    stored = np.arange(0, 2048).reshape(32, 64) - 1024
    series = _series(ct_slice(stored, RescaleSlope=0.37, RescaleIntercept=-3.1))

    kept = _kept(series).values(0)

    expected = np.arange(0, 2048).reshape(32, 64) * 0.37 - 3.1
    assert np.abs(kept - expected).max() <= (expected.max() - expected.min()) / 65535 + 1e-3


def test_a_colour_series_is_not_kept():

    dataset = Dataset()
    dataset.Modality = "OT"
    dataset.SeriesInstanceUID = "1.2.3.4"
    dataset.set_pixel_data(np.zeros((4, 4, 3), dtype=np.uint8), "RGB", 8)
    series = _series(dicom_file(dataset, SecondaryCaptureImageStorage))

    with pytest.raises(NotWindowable):
        volume_write(series, io.BytesIO(), window="auto")


def test_a_range_of_slices_is_sampled_evenly_with_both_ends():
    assert pick_range(40, start=1, end=40, limit=10) == [0, 4, 9, 13, 17, 22, 26, 30, 35, 39]
    assert pick_range(40, start=11, end=20, limit=4) == [10, 13, 16, 19]
    assert pick_range(40, start=5, end=7, limit=10) == [4, 5, 6]
    for start, end in ((0, 5), (6, 5), (1, 41)):
        with pytest.raises(ValueError, match="Choose slices from 1 to 40"):
            pick_range(40, start=start, end=end, limit=3)


# --- the upload, the viewer's reads, choosing again


@pytest.fixture
def session(user):
    return services.session_create(owner=user, model_name="MedGemma demo")


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def _upload(client, session, count: int = 40, window: str = "brain"):
    members = {f"CT/IM{n:04d}.dcm": raw for n, raw in enumerate(ct_series(count))}
    upload = SimpleUploadedFile("ct.zip", zip_of(members), content_type="application/zip")
    return client.post(f"/chat/{session.pk}/attachments/", {"images": [upload], "window": window})


def _slice_shown(attachment: Attachment) -> int:
    """The slice a PNG shows: ct_series puts its number, in HU, in every pixel;
    the brain window (0..80 HU) makes it a gray level."""
    gray = np.asarray(Image.open(attachment.file.path))
    return round(float(gray.mean()) / 255 * 80)


@pytest.mark.django_db
def test_an_uploaded_series_is_kept_once_for_all_its_slices(signed_in, session, settings):
    response = _upload(signed_in, session)

    stored = list(Attachment.objects.order_by("created_at"))
    assert len(stored) == 10
    assert len({a.volume.name for a in stored}) == 1
    assert stored[0].volume.name.endswith(".npz")
    page = html.unescape(response.content.decode())
    assert "10 of 40 slices fit in one message." in page
    assert page.count('name="attachments"') == 10
    assert f'data-series="/attachments/{stored[0].pk}/series/"' in page
    assert [_slice_shown(a) for a in stored] == [1, 5, 10, 14, 18, 23, 27, 31, 36, 40]
    kept = list(Path(settings.MEDIA_ROOT).rglob("*.npz"))
    assert len(kept) == 1


@pytest.mark.django_db
def test_the_viewer_reads_the_series_facts_and_any_slice_of_its_owners_series(
    signed_in, session, client, django_user_model
):
    _upload(signed_in, session)
    third = Attachment.objects.order_by("created_at")[2]

    facts = signed_in.get(f"/attachments/{third.pk}/series/")
    raw = signed_in.get(f"/attachments/{third.pk}/series/7/")

    assert facts.status_code == 200 and facts["Cache-Control"].startswith("no-store")
    data = facts.json()
    assert (data["count"], data["slice"], data["modality"]) == (40, 9, "CT")
    assert data["sent"] == [0, 4, 9, 13, 17, 22, 26, 30, 35, 39] and data["pending"] is True
    assert data["model_window"]["name"] == "brain"
    assert data["presets"]["lung"] == {"center": -600.0, "width": 1500.0}
    assert data["slices"][6] == {
        "width": 8,
        "height": 8,
        "slope": 1.0,
        "intercept": 0.0,
        "inverted": False,
        "file_window": None,
    }
    assert raw.status_code == 200 and raw["Content-Type"] == "application/octet-stream"
    assert raw["Cache-Control"].startswith("no-store")
    assert np.frombuffer(raw.content, dtype="<i2").tolist() == [7] * 64
    assert signed_in.get(f"/attachments/{third.pk}/series/41/").status_code == 404
    assert signed_in.get(f"/attachments/{third.pk}/").status_code == 200
    # Nobody else's.
    client.logout()
    other = django_user_model.objects.create_user("other", password="a-long-passphrase")
    client.force_login(other)
    assert client.get(f"/attachments/{third.pk}/series/").status_code == 404
    assert client.get(f"/attachments/{third.pk}/series/7/").status_code == 404


@pytest.mark.django_db
def test_choosing_a_range_replaces_the_series_slices_in_the_composer(signed_in, session):
    _upload(signed_in, session)
    first = Attachment.objects.order_by("created_at").first()
    volume = first.volume.name

    response = signed_in.post(
        f"/chat/{session.pk}/attachments/{first.pk}/slices/",
        {"start": "11", "end": "20", "count": "4"},
    )

    stored = list(Attachment.objects.order_by("created_at"))
    assert [a.dicom["slice"] for a in stored] == [11, 14, 17, 20]
    assert [_slice_shown(a) for a in stored] == [11, 14, 17, 20]
    assert [a.label for a in stored][0] == "CT slice 11 of 40, AX LUNG 1.25 (brain window)"
    assert {a.volume.name for a in stored} == {volume}
    page = html.unescape(response.content.decode())
    assert re.findall(r'name="attachments" value="([^"]+)"', page) == [str(a.pk) for a in stored]
    assert 'value="11"' in page and 'value="20"' in page
    assert Path(first.volume.path).exists()  # still the series' values


@pytest.mark.django_db
def test_more_slices_than_fit_are_refused_and_the_chosen_ones_stay(signed_in, session):
    _upload(signed_in, session)
    before = list(Attachment.objects.order_by("created_at").values_list("pk", flat=True))
    first = Attachment.objects.get(pk=before[0])

    too_many = signed_in.post(
        f"/chat/{session.pk}/attachments/{first.pk}/slices/",
        {"start": "1", "end": "40", "count": "11"},
    )
    backwards = signed_in.post(
        f"/chat/{session.pk}/attachments/{first.pk}/slices/",
        {"start": "30", "end": "20", "count": "3"},
    )

    assert "At most 10 slices fit in one message" in html.unescape(too_many.content.decode())
    assert "Choose slices from 1 to 40" in html.unescape(backwards.content.decode())
    assert list(Attachment.objects.order_by("created_at").values_list("pk", flat=True)) == before
    assert html.unescape(backwards.content.decode()).count('name="attachments"') == 10


@pytest.mark.django_db
def test_other_images_in_the_composer_leave_less_room(signed_in, session, user):
    _upload(signed_in, session)
    photo = io.BytesIO()
    Image.new("RGB", (8, 8)).save(photo, format="PNG")
    signed_in.post(
        f"/chat/{session.pk}/attachments/",
        {"images": [SimpleUploadedFile("x.png", photo.getvalue(), content_type="image/png")]},
    )
    image = Attachment.objects.get(volume="")
    first = Attachment.objects.exclude(volume="").order_by("created_at").first()

    with pytest.raises(Rejected, match="At most 9 slices fit in one message beside the 1"):
        series_slices_choose(
            owner=user,
            session=session,
            attachment_id=first.pk,
            start=1,
            end=40,
            count=10,
            composer_ids=[str(image.pk), str(first.pk)],
        )


@pytest.mark.django_db(transaction=True)
def test_the_kept_series_goes_with_the_last_slice_that_refers_to_it(signed_in, session, settings):
    _upload(signed_in, session, count=4)
    kept = next(Path(settings.MEDIA_ROOT).rglob("*.npz"))
    stored = list(Attachment.objects.order_by("created_at"))

    stored[0].delete()
    assert kept.exists()
    Attachment.objects.all().delete()
    assert not kept.exists()


@pytest.mark.django_db
def test_the_facts_kept_are_json_of_allow_listed_facts_only(signed_in, session, settings):
    _upload(signed_in, session, count=3)
    (kept,) = Path(settings.MEDIA_ROOT).rglob("*.npz")

    with np.load(kept, allow_pickle=False) as archive:
        facts = json.loads(archive["facts"].tobytes())

    assert set(facts) == {"format", "series", "window", "slices"}
    assert set(facts["series"]) <= {
        "modality",
        "body_part",
        "series_description",
        "slice_thickness_mm",
        "pixel_spacing_mm",
        "spacing_between_slices_mm",
    }


@pytest.mark.django_db(transaction=True)
def test_a_kept_series_in_use_is_no_orphan_at_start_and_goes_with_its_unsent_slices(
    signed_in, session, settings
):

    _upload(signed_in, session, count=4)
    kept = next(Path(settings.MEDIA_ROOT).rglob("*.npz"))
    old = timezone.now() - datetime.timedelta(days=2)
    os.utime(kept, (old.timestamp(), old.timestamp()))

    attachment_files.remove_stale_uploads()
    assert kept.exists()  # its slices, sent or not, are less than a day old

    Attachment.objects.update(created_at=old)
    attachment_files.remove_stale_uploads()
    assert not kept.exists() and not Attachment.objects.exists()


@pytest.mark.django_db
def test_the_draft_shows_a_series_with_its_range_again(signed_in, session):
    _upload(signed_in, session)
    first = Attachment.objects.order_by("created_at").first()
    signed_in.post(
        f"/chat/{session.pk}/attachments/{first.pk}/slices/",
        {"start": "5", "end": "25", "count": "3"},
    )
    ids = [str(pk) for pk in Attachment.objects.order_by("created_at").values_list("pk", flat=True)]
    services.draft_save(session=session, text="Nodules?", attachment_ids=ids)

    page = html.unescape(signed_in.get(f"/chat/{session.pk}/").content.decode())

    assert page.count('class="pending-series"') == 1
    assert "10 of 40 slices fit in one message." in page
    assert re.findall(r'name="attachments" value="([^"]+)"', page) == ids
    assert re.search(r'name="start"[^>]* value="5"', page)
    assert re.search(r'name="end"[^>]* value="25"', page)
    assert re.search(r'name="count"[^>]* value="3"', page)


@pytest.mark.django_db
def test_a_damaged_slice_not_sent_leaves_the_series_unkept_but_its_slices_attached(
    signed_in, session
):

    raws = ct_series(12)
    raws[3] = damaged(compressed(raws[3], RLELossless))  # slice 4: not among the 10 sent
    members = {f"CT/IM{n:04d}.dcm": raw for n, raw in enumerate(raws)}
    upload = SimpleUploadedFile("ct.zip", zip_of(members), content_type="application/zip")

    response = signed_in.post(f"/chat/{session.pk}/attachments/", {"images": [upload]})

    stored = list(Attachment.objects.order_by("created_at"))
    assert [a.dicom["slice"] for a in stored] == [1, 2, 3, 5, 6, 7, 8, 10, 11, 12]
    assert all(a.volume.name == "" for a in stored)
    page = html.unescape(response.content.decode())
    assert "could not be kept whole for the viewer" in page and "damaged" in page
    assert "pending-series" not in page


@pytest.mark.django_db
def test_a_slice_whose_kept_series_is_gone_has_no_series_to_view(signed_in, session):
    _upload(signed_in, session, count=3)
    slice_ = Attachment.objects.first()
    Path(slice_.volume.path).unlink()

    assert signed_in.get(f"/attachments/{slice_.pk}/series/").status_code == 404
    assert signed_in.get(f"/attachments/{slice_.pk}/series/1/").status_code == 404
    assert signed_in.get(f"/attachments/{slice_.pk}/").status_code == 200  # the image itself
