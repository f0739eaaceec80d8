"""PDF lab reports: rendered to page images that reach the model with their labels,
nothing of the file kept but the pixels, sized by the message limits; tables in an
answer downloaded as CSV."""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from audit.models import AuditEvent
from chat import selectors, services
from chat.models import Attachment, Message
from imaging import documents
from inference.engine import GenerationRequest
from inference.prompting import build_messages
from inference.registry import MODELS
from tests.documents_files import METADATA_TEXT, lab_report

pytestmark = pytest.mark.django_db

FILE_NAME = "Doe_Jane_labs.pdf"


@pytest.fixture
def session(user):
    return services.session_create(owner=user, model_name="MedGemma demo")


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def _upload(client, session, raw: bytes, name: str = FILE_NAME):
    upload = SimpleUploadedFile(name, raw, content_type="application/pdf")
    return client.post(f"/chat/{session.pk}/attachments/", {"images": [upload]})


def _shown(response) -> str:
    return html.unescape(response.content.decode())


# --- rendering


def test_each_page_becomes_a_legible_image_with_its_label():
    document = documents.render_pdf(lab_report(2), name=FILE_NAME, limit=10)

    assert document.page_count == 2
    assert [p.label for p in document.pages] == ["Document page 1 of 2", "Document page 2 of 2"]
    page = document.pages[0]
    assert max(page.width, page.height) == documents.PAGE_LONGEST_PX
    assert round(page.height / page.width, 2) == round(297 / 210, 2)  # A4
    pixels = np.asarray(Image.open(io.BytesIO(page.png)).convert("L"))
    assert pixels[0, 0] == 255  # white paper, not transparency
    assert (pixels[: page.height // 3] < 100).mean() > 0.005  # the heading and table are drawn
    assert (pixels[-page.height // 4 :] < 100).mean() == 0  # the page's foot is blank


def test_only_the_pages_asked_for_are_rendered():
    document = documents.render_pdf(lab_report(3), name=FILE_NAME, limit=2)

    assert document.page_count == 3 and len(document.pages) == 2


@pytest.mark.parametrize("raw", [b"%PDF-1.7 but nothing else", lab_report(1)[:400]])
def test_a_damaged_pdf_is_refused_with_its_name(raw):
    with pytest.raises(documents.DocumentRejected, match=f"{FILE_NAME} could not be read as a PDF"):
        documents.render_pdf(raw, name=FILE_NAME, limit=5)


# --- through the page


def test_an_uploaded_lab_report_is_stored_as_labelled_page_images(signed_in, session):
    response = _upload(signed_in, session, lab_report(2))

    assert response.status_code == 200
    assert "alert-error" not in response.content.decode()
    stored = list(Attachment.objects.order_by("created_at"))
    assert [a.label for a in stored] == ["Document page 1 of 2", "Document page 2 of 2"]
    assert all(a.content_type == "image/png" and a.dicom == {} for a in stored)
    page = _shown(response)
    assert 'alt="Document page 1 of 2"' in page


def test_nothing_of_the_pdf_but_its_pixels_is_stored(signed_in, session, settings):
    _upload(signed_in, session, lab_report(1))

    stored = list(Attachment.objects.values())
    assert len(stored) == 1
    text = json.dumps(stored, default=str)
    files = [p.read_bytes() for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].startswith(b"\x89PNG") and b"%PDF" not in files[0]
    for identifying in (*METADATA_TEXT, "Doe_Jane"):
        assert identifying not in text, identifying
        assert identifying.encode() not in files[0], identifying
    with Image.open(io.BytesIO(files[0])) as image:
        assert not image.info.get("Title") and not getattr(image, "text", {})


def test_a_report_longer_than_a_message_carries_keeps_its_first_pages_and_says_so(
    signed_in, session, medserver_settings
):
    medserver_settings(max_image_count=2)

    response = _upload(signed_in, session, lab_report(3))

    stored = Attachment.objects.order_by("created_at")
    assert [a.label for a in stored] == ["Document page 1 of 3", "Document page 2 of 3"]
    # Named by its place, never by its file name (which holds the patient's).
    shown = _shown(response)
    assert (
        "Upload 1: 3 pages, the first 2 attached (the most one message may carry, "
        "with its other images (2))."
    ) in shown
    assert "Doe_Jane" not in shown


def test_a_damaged_pdf_upload_is_refused_and_stores_nothing(signed_in, session):
    response = _upload(signed_in, session, b"%PDF-1.4 broken")

    shown = _shown(response)
    assert "Upload 1 could not be read as a PDF" in shown and "Doe_Jane" not in shown
    assert Attachment.objects.count() == 0


def test_the_report_reaches_the_model_as_labelled_pages(signed_in, session):
    _upload(signed_in, session, lab_report(2))
    ids = list(Attachment.objects.order_by("created_at").values_list("pk", flat=True))
    prompt = documents.EXTRACT_LAB_VALUES_PROMPT
    _, answer = services.message_send(session=session, content=prompt, attachment_ids=ids)

    (turn,) = selectors.conversation_before(answer)
    messages = build_messages(
        GenerationRequest(turns=(turn,)), MODELS["4"], lambda source, n: {"image": n}
    )

    # A4 at 1600 px tall, as stored and sent.
    assert [Image.open(path).size for path in turn.images] == [(1132, 1600)] * 2
    assert messages[0]["content"] == [
        {"image": 1},
        {"type": "text", "text": "Document page 1 of 2"},
        {"image": 2},
        {"type": "text", "text": f"Document page 2 of 2\n\n{prompt}"},
    ]


def test_the_composer_takes_pdfs_and_offers_the_extraction_prompt(signed_in, session):
    page = signed_in.get(f"/chat/{session.pk}/").content.decode()

    assert "application/pdf,.pdf" in page
    assert html.escape(documents.EXTRACT_LAB_VALUES_PROMPT) in page


# --- an answer's table as CSV

TABLE_ANSWER = (
    "| Test | Value | Unit | Reference range | Flag |\n"
    "|---|---|---|---|---|\n"
    "| **Hemoglobin** | 13.5 | g/dL | 12.0-15.5 | |\n"
    "| Potassium | 5.9 | mmol/L | 3.5-5.1 | H |\n"
    "| Base excess | -2.1 | mmol/L | -2 to +2 | L |\n"
    '| =HYPERLINK("x") | — | — | — | |\n\n'
    "Potassium is above its range."
)


def _answer(session, content: str) -> Message:
    question = Message.objects.create(session=session, role=Message.Role.USER, content="Extract.")
    return Message.objects.create(
        session=session, parent=question, role=Message.Role.ASSISTANT, content=content
    )


def test_an_answers_table_renders_and_downloads_as_csv(signed_in, session):
    answer = _answer(session, TABLE_ANSWER)

    page = signed_in.get(f"/chat/{session.pk}/").content.decode()
    response = signed_in.get(f"/chat/{session.pk}/messages/{answer.pk}/table.csv")

    assert "<table>" in page and "<td>mmol/L</td>" in page
    assert f'href="/chat/{session.pk}/messages/{answer.pk}/table.csv"' in page
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Cache-Control"] == "no-store"
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows == [
        ["Test", "Value", "Unit", "Reference range", "Flag"],
        ["Hemoglobin", "13.5", "g/dL", "12.0-15.5", ""],
        ["Potassium", "5.9", "mmol/L", "3.5-5.1", "H"],
        # A negative number stays one; other text starting with a minus is made safe.
        ["Base excess", "-2.1", "mmol/L", "'-2 to +2", "L"],
        ['\'=HYPERLINK("x")', "—", "—", "—", ""],  # a formula is not run
    ]
    assert AuditEvent.objects.filter(detail="answer table, csv").count() == 1


def test_no_csv_without_a_table_nor_for_anyone_else(signed_in, session, client, other_user):
    plain = _answer(session, "Potassium 5.9 mmol/L is high.")
    assert "table.csv" not in signed_in.get(f"/chat/{session.pk}/").content.decode()
    assert signed_in.get(f"/chat/{session.pk}/messages/{plain.pk}/table.csv").status_code == 404

    Message.objects.filter(pk=plain.pk).update(content=TABLE_ANSWER)
    client.force_login(other_user)
    assert client.get(f"/chat/{session.pk}/messages/{plain.pk}/table.csv").status_code == 404
