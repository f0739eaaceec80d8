"""Prior studies: images of an earlier study reach the model first, labelled with
the interval before the current one ("Prior study (14 months before the current
one)", then "Current study"), as MedGemma 1.5's longitudinal examples pass them.
Intervals come from the DICOM dates of one upload or from the clinician; no date
is ever stored, shown, sent, exported or logged."""

from __future__ import annotations

import datetime
import html
import io
import json
import logging

import numpy as np
import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from pypdf import PdfReader
from transformers import AutoProcessor

from chat import selectors, services
from chat.models import Attachment
from imaging.priors import (
    CURRENT_LABEL,
    Interval,
    IntervalRejected,
    in_study_order,
    interval_between,
    interval_from_form,
)
from inference.demo_model import DEMO_MODEL_NAME, ensure_demo_model
from inference.engine import GenerationRequest
from inference.prompting import build_messages
from inference.registry import MODELS
from tests.chat.conversation import finish_answer
from tests.dicom_files import PATIENT_TAGS, mr_slice, zip_of

PRIOR_DAY, CURRENT_DAY = "19970312", "19980514"  # 428 days apart: 14 months
# Every way the two dates could be written; none may appear anywhere.
DATE_FORMS = tuple(
    form
    for day in (datetime.date(1997, 3, 12), datetime.date(1998, 5, 14))
    for form in (
        day.strftime("%Y%m%d"),
        day.isoformat(),
        day.strftime("%d/%m/%Y"),
        day.strftime("%m/%d/%Y"),
        day.strftime("%d.%m.%Y"),
        day.strftime("%d %B %Y"),
        day.strftime("%B %d, %Y"),
        day.strftime("%d/%m/%y"),
    )
)
YEARS = ("1997", "1998")  # in text (labels, prompt, page, exports, logs) not even the year
PRIOR_LABEL = "Prior study (14 months before the current one)"


def _radiograph(day: str, series: str, description: str, level: int) -> bytes:
    """A chest radiograph as a DICOM file taken on `day`, dated everywhere a file can be."""
    return mr_slice(
        np.full((16, 16), level),
        window=(2000, 4000),
        series=series,
        Modality="DX",
        BodyPartExamined="CHEST",
        SeriesDescription=description,
        StudyDate=day,
        SeriesDate=day,
        AcquisitionDate=day,
        ContentDate=day,
        **PATIENT_TAGS,
    )


def _two_studies_zip() -> SimpleUploadedFile:
    # The current study first in the zip: the dates, not the order, say which is prior.
    current = _radiograph(CURRENT_DAY, "1.2.826.0.1.3680043.8.498.71", "CHEST PA", 3000)
    prior = _radiograph(PRIOR_DAY, "1.2.826.0.1.3680043.8.498.70", "CHEST PA 12/03/1997", 1000)
    data = zip_of({"current/IM0001": current, "prior/IM0001": prior})
    return SimpleUploadedFile("studies.zip", data, content_type="application/zip")


def _without_dates(text: str, where: str, *, years: bool = True) -> None:
    for form in DATE_FORMS + (YEARS if years else ()):
        assert form.lower() not in text.lower(), f"{form!r} in the {where}"


# --- the library


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (0, Interval(1, "days")),
        (5, Interval(5, "days")),
        (30, Interval(4, "weeks")),
        (428, Interval(14, "months")),
        (800, Interval(2, "years")),
    ],
)
def test_the_interval_between_two_dates_is_said_as_a_report_would(days, expected):
    earlier = datetime.date(2020, 1, 1)

    assert interval_between(earlier, earlier + datetime.timedelta(days=days)) == expected


def test_labels_say_the_interval_in_words():
    assert Interval(14, "months").label() == PRIOR_LABEL
    assert Interval(1, "weeks").describe() == "1 week"


@pytest.mark.parametrize(
    ("amount", "unit"),
    [("", "months"), ("0", "days"), ("3", "fortnights"), ("2.5", "weeks"), ("5000", "days")],
)
def test_a_stated_interval_must_be_a_whole_number_of_a_known_unit(amount, unit):
    with pytest.raises(IntervalRejected, match="whole number from 1 to 1200"):
        interval_from_form(amount, unit)


def test_priors_come_first_oldest_first_and_each_image_says_its_study():
    items = [
        ("a", None, "CT slice 1 of 2"),
        ("b", Interval(2, "years"), ""),
        ("c", Interval(3, "weeks"), ""),
    ]

    ordered = in_study_order(items, lambda i: i[1], lambda i: i[2])

    assert [(item[0], label) for item, label in ordered] == [
        ("b", "Prior study (2 years before the current one)"),
        ("c", "Prior study (3 weeks before the current one)"),
        ("a", f"{CURRENT_LABEL}: CT slice 1 of 2"),
    ]
    plain = [("a", None, "x"), ("b", None, "")]
    assert in_study_order(plain, lambda i: i[1], lambda i: i[2]) == [
        (plain[0], "x"),
        (plain[1], ""),
    ]


# --- through the chat: dates become an interval, and nothing else


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def session(user):
    return services.session_create(owner=user, model_name="MedGemma demo")


@pytest.fixture(scope="module")
def processor(tmp_path_factory):
    return AutoProcessor.from_pretrained(
        ensure_demo_model(tmp_path_factory.mktemp("models") / DEMO_MODEL_NAME)
    )


def _database_dump() -> str:
    """Every row of every table, every field."""
    rows = {}
    for model in apps.get_models():
        rows[model._meta.label] = list(model.objects.values())
    return json.dumps(rows, default=str)


@pytest.mark.django_db
def test_dicom_dates_become_the_interval_only_everywhere(signed_in, session, processor, caplog):
    caplog.set_level(logging.DEBUG)

    upload = signed_in.post(f"/chat/{session.pk}/attachments/", {"images": [_two_studies_zip()]})
    ids = list(Attachment.objects.values_list("pk", flat=True))
    _, answer = services.message_send(
        session=session, content="Compare with the prior.", attachment_ids=ids
    )
    finish_answer(answer, "Interval improvement of the left basal opacity.")

    assert upload.status_code == 200
    prior, current = (
        Attachment.objects.get(prior_amount__isnull=False),
        Attachment.objects.get(prior_amount__isnull=True),
    )
    assert (prior.prior_amount, prior.prior_unit) == (14, "months")
    assert "series_description" not in prior.dicom  # it held a date
    assert current.dicom["series_description"] == "CHEST PA"
    (turn,) = selectors.conversation_before(answer)
    assert turn.image_labels == (
        f"{PRIOR_LABEL}: DX image (window from the file, 2000/4000)",
        f"{CURRENT_LABEL}: DX image, CHEST PA (window from the file, 2000/4000)",
    )
    assert turn.images[0].name == prior.file.name.rsplit("/", 1)[-1]
    messages = build_messages(
        GenerationRequest(turns=(turn,)), MODELS["demo"], lambda s, n: {"type": "image", "image": s}
    )
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert prompt.index(PRIOR_LABEL) < prompt.index(CURRENT_LABEL)
    page = html.unescape(signed_in.get(f"/chat/{session.pk}/").content.decode())
    assert f'<span class="thumb-label">{PRIOR_LABEL}: DX image' in page
    markdown = signed_in.get(f"/chat/{session.pk}/export.md").content.decode()
    assert f"Image 1: {PRIOR_LABEL}" in markdown
    pdf = signed_in.get(f"/chat/{session.pk}/export.pdf").content
    pdf_text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Prior study" in pdf_text and "14 months" in pdf_text
    shown = html.unescape(upload.content.decode())
    assert f"DX series: {PRIOR_LABEL}." in shown and "Prior · 14 months" in shown

    for text, where in (
        (prompt, "prompt"),
        (page, "page"),
        (shown, "upload's answer"),
        (markdown.split("[image-")[0], "Markdown export"),
        (pdf_text, "PDF export"),
        (caplog.text, "log"),
    ):
        _without_dates(text, where)
    # The database and the stored files: full dates (a random id may hold "1997").
    _without_dates(_database_dump(), "database", years=False)
    for attachment in Attachment.objects.all():
        data = attachment.file.read()
        assert data.startswith(b"\x89PNG") and b"tEXt" not in data and b"iTXt" not in data


# --- through the chat: the clinician states the interval


def _png(level: int) -> SimpleUploadedFile:
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (32, 32), level).save(out, "PNG")
    return SimpleUploadedFile("cxr.png", out.getvalue(), content_type="image/png")


def _upload(client, session, *files) -> list[Attachment]:
    before = set(Attachment.objects.values_list("pk", flat=True))
    client.post(f"/chat/{session.pk}/attachments/", {"images": list(files)})
    return list(Attachment.objects.exclude(pk__in=before).order_by("created_at"))


def _mark(client, attachment, **data):
    return client.post(reverse("chat:attachment-study", args=[attachment.pk]), data)


@pytest.mark.django_db
def test_an_image_marked_prior_reaches_the_model_first_with_the_stated_interval(signed_in, session):
    (current,) = _upload(signed_in, session, _png(200))
    (prior,) = _upload(signed_in, session, _png(60))

    response = _mark(signed_in, prior, prior="1", amount="3", unit="weeks")

    shown = html.unescape(response.content.decode())
    assert f'id="pending-{prior.pk}" hx-swap-oob="true"' in shown and "Prior · 3 weeks" in shown
    _, answer = services.message_send(
        session=session, content="Changes?", attachment_ids=[current.pk, prior.pk]
    )
    (turn,) = selectors.conversation_before(answer)
    assert [path.name for path in turn.images] == [
        prior.file.name.rsplit("/", 1)[-1],
        current.file.name.rsplit("/", 1)[-1],
    ]
    assert turn.image_labels == ("Prior study (3 weeks before the current one)", CURRENT_LABEL)


@pytest.mark.django_db
def test_marking_one_slice_marks_its_whole_series_and_only_it(signed_in, session):
    series = [mr_slice(np.full((8, 8), n * 100), instance=n, window=(200, 400)) for n in (1, 2, 3)]
    data = zip_of({f"s/IM{n}": raw for n, raw in enumerate(series)})
    slices = _upload(signed_in, session, SimpleUploadedFile("s.zip", data))
    (other,) = _upload(signed_in, session, _png(90))

    _mark(signed_in, slices[1], prior="1", amount="2", unit="years")

    slices = [Attachment.objects.get(pk=a.pk) for a in slices]
    assert [a.prior for a in slices] == [Interval(2, "years")] * 3
    assert Attachment.objects.get(pk=other.pk).prior is None
    _mark(signed_in, slices[0], prior="")
    assert not Attachment.objects.filter(prior_amount__isnull=False).exists()


@pytest.mark.django_db
def test_a_wrong_interval_is_refused_and_changes_nothing(signed_in, session):
    (image,) = _upload(signed_in, session, _png(90))

    response = _mark(signed_in, image, prior="1", amount="soon", unit="months")

    assert "whole number from 1 to 1200" in html.unescape(response.content.decode())
    assert Attachment.objects.get(pk=image.pk).prior is None


@pytest.mark.django_db
def test_nobody_marks_anothers_image(client, other_user, signed_in, session):
    (image,) = _upload(signed_in, session, _png(90))
    client.force_login(other_user)

    response = _mark(client, image, prior="1", amount="2", unit="months")

    assert response.status_code == 404
    assert Attachment.objects.get(pk=image.pk).prior is None


@pytest.mark.django_db
def test_an_edited_question_keeps_its_prior_study(signed_in, session):
    (current,) = _upload(signed_in, session, _png(200))
    (prior,) = _upload(signed_in, session, _png(60))
    _mark(signed_in, prior, prior="1", amount="6", unit="months")
    question, first = services.message_send(
        session=session, content="Changes?", attachment_ids=[current.pk, prior.pk]
    )
    finish_answer(first)

    _, answer = services.message_edit(message=question, content="Any change?")

    (turn,) = selectors.conversation_before(answer)
    assert turn.image_labels == ("Prior study (6 months before the current one)", CURRENT_LABEL)
