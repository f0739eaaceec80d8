"""No patient name from a DICOM header, nor a file name or zip member path, reaches
the page, the model, the exports, the admin, the audit trail or the log.

A table of names in many scripts is uploaded as a PACS export would carry it:
in PatientName, in the series description, in the zip's folder and file
names, in the name of a broken .dcm uploaded beside it.
"""

from __future__ import annotations

import html
import io
import logging

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils.html import strip_tags
from pypdf import PdfReader

from audit.models import AuditEvent
from chat import selectors, services
from chat.models import Attachment
from imaging import person_names
from tests.chat.conversation import finish_answer
from tests.dicom_files import ct_slice, zip_of

pytestmark = pytest.mark.django_db

# (PatientName, how a file or folder would be named, a series description naming them)
NAMES = [
    ("Kowalczyk^Wiesława", "Kowalczyk_Wiesława", "CT KLATKI WIESLAWA KOWALCZYK"),
    ("Müller^Jürgen", "Mueller Juergen", "MULLER JURGEN SCHAEDEL"),
    ("Łukasiewicz^Bożena", "Łukasiewicz", "LUKASIEWICZ THORAX"),
    ("王^小明", "王小明", "王小明 胸部CT"),
    ("Yamada^Tarou=山田^太郎=やまだ^たろう", "山田太郎", "山田太郎頭部"),
    ("김^민준", "김민준", "김민준 흉부"),
    ("Li^Wu", "Li Wu", "Li Wu head CT"),
    ("Ng^Al", "Ng", "CHEST NG AL"),
    ("Иванов^Пётр", "Иванов Пётр", "ИВАНОВ ПЕТР ГРУДЬ"),
    ("محمد^أحمد", "أحمد", "صدر أحمد محمد"),
    ("Παπαδόπουλος^Γιώργος", "Παπαδόπουλος", "ΘΩΡΑΚΑΣ ΠΑΠΑΔΟΠΟΥΛΟΣ"),
    ("O'Brien^Seán", "OBrien Sean", "CHEST OBRIEN"),
]
MRN = "MRN55501234"


def leaked(text: str, *names: str) -> set[str]:
    """The parts of `names` (two letters or more) that `text` shows as words, or
    anywhere for scripts written without spaces."""
    words = set(person_names.components(text))
    squeezed = "".join(person_names.components(text))
    found = set()
    for name in names:
        for part in person_names.components(name):
            unspaced = any(ord(c) > 0x2E80 for c in part)
            if (len(part) >= 2 and part in words) or (unspaced and part in squeezed):
                found.add(part)
    return found


def shown(response) -> str:
    return html.unescape(strip_tags(response.content.decode()))


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.mark.parametrize("patient, file_name, description", NAMES, ids=[n[1] for n in NAMES])
def test_no_name_reaches_any_output(
    client, user, admin_user, engine, caplog, patient, file_name, description
):
    caplog.set_level(logging.DEBUG)
    session = services.session_create(owner=user, model_name="demo")
    tags = {
        "SpecificCharacterSet": "ISO_IR 192",  # UTF-8: every script as written
        "PatientName": patient,
        "PatientID": MRN,
        "SeriesDescription": description,
    }
    study = zip_of(
        {
            f"{file_name}_{MRN}/IM0001.dcm": ct_slice(np.zeros((8, 8)), **tags),
            f"{file_name}_{MRN}/SR_{file_name}.dcm": b"DICM-less report",
        }
    )
    client.force_login(user)
    page = client.post(
        f"/chat/{session.pk}/attachments/",
        {
            "images": [
                SimpleUploadedFile(f"{file_name}.zip", study),
                SimpleUploadedFile(f"{file_name} {MRN}.dcm", b"broken"),
                SimpleUploadedFile(f"{file_name}.png", b"not an image"),
            ]
        },
    )
    assert page.status_code == 200
    assert "file 2" in shown(page)  # the zip's broken member is named by its place
    (slice_,) = Attachment.objects.all()
    question, answer = services.message_send(
        session=session, content="Findings?", attachment_ids=[slice_.pk]
    )
    finish_answer(answer)
    turns = selectors.conversation_before(answer)
    prompt = " ".join(label for turn in turns for label in turn.image_labels)
    export = client.get(f"/chat/{session.pk}/export.md")
    pdf = PdfReader(io.BytesIO(client.get(f"/chat/{session.pk}/export.pdf").content))
    client.force_login(admin_user)
    admin_pages = [
        client.get(f"/admin/chat/attachment/{slice_.pk}/change/"),
        client.get("/admin/chat/attachment/"),
        client.get(f"/admin/chat/message/{question.pk}/change/"),
    ]
    audit = " ".join(str(row) for row in AuditEvent.objects.values())
    log = " ".join(record.getMessage() for record in caplog.records)

    outputs = {
        "page": shown(page),
        "stored label and facts": f"{slice_.label} {slice_.dicom}",
        "model prompt": prompt,
        "export": export.content.decode(),
        "PDF export": " ".join(page.extract_text() for page in pdf.pages),
        "admin": " ".join(shown(response) for response in admin_pages),
        "audit": audit,
        "log": log,
    }
    for where, text in outputs.items():
        assert not leaked(text, patient, file_name, MRN), where
    assert "CT slice" in prompt or "CT image" in prompt


def test_a_description_naming_nobody_is_kept_beside_a_patient_name():
    from imaging import dicom

    raw = ct_slice(np.zeros((8, 8)), PatientName="Li^Wu", SeriesDescription="AX LUNG 1.25")
    (series,), _ = dicom.read_series([dicom.DicomFile("upload 1", lambda: raw)])
    assert series.facts["series_description"] == "AX LUNG 1.25"


@pytest.mark.parametrize(
    "text, names, mentions",
    [
        ("Li Wu head CT", ["Li^Wu"], True),
        ("LIWU HEAD", ["Li^Wu"], True),
        ("CLINICAL OBLIQUE", ["Li^Wu"], False),  # "li" inside a word is not the name
        ("王小明 胸部CT", ["王^小明"], True),
        ("胸部CT", ["王^小明"], False),
        ("AX T2 FLAIR", ["Kowalczyk^Wiesława"], False),
        ("wieslawa", ["KOWALCZYK^WIESŁAWA"], True),
        ("J HEAD", ["Smith^J"], False),  # an initial alone is no name
    ],
)
def test_name_matching_rules(text, names, mentions):
    assert person_names.mentions_any(text, names) is mentions
