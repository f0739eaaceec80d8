"""A rejected answer carries its verdict: in the page, in what Copy takes, in the exports."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

import exports
from chat import services
from chat.models import Message
from chat.templatetags.chat_format import copied_answer
from reviews import services as review_services
from tests.chat.conversation import exchange

pytestmark = pytest.mark.django_db


@pytest.fixture
def rejected(user, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    session = services.session_create(owner=user, model_name="demo")
    _, answer = exchange(session, "CXR?", "Hilum enlarged on the right.")
    review_services.answer_review(
        message=answer, reviewer=user, verdict="rejected", comment="Calls a normal hilum enlarged."
    )
    return Message.objects.get(pk=answer.pk)


def test_copy_starts_with_who_rejected_it_when_and_why(rejected):
    text = copied_answer(rejected)
    first = text.splitlines()[0]
    assert first.startswith("REJECTED by clinician on 20")
    assert first.endswith("CET: Calls a normal hilum enlarged.") or first.endswith(
        "CEST: Calls a normal hilum enlarged."
    )
    assert text.index("Hilum enlarged") > text.index("REJECTED")


def test_the_page_shows_a_labelled_banner_and_a_review_updates_it(client, user, rejected):
    client.force_login(user)
    page = client.get(f"/chat/{rejected.session_id}/").content.decode()
    banner = page.split('class="rejected-banner"')[1].split("</div>")[0]
    assert "Rejected: not to be relied on" in banner and "Calls a normal hilum" in banner
    url = f"/chat/{rejected.session_id}/messages/{rejected.pk}/review/"
    cleared = client.post(url, {"verdict": ""}, HTTP_HX_REQUEST="true").content.decode()
    verdict = cleared.split('id="verdict-')[1]
    assert 'hx-swap-oob="true"' in verdict.split(">")[0]
    assert "rejected-banner" not in verdict and "REJECTED" not in verdict


def test_markdown_and_pdf_put_the_rejection_above_the_answer(rejected):
    markdown = exports.session_export(rejected.session, "md").content.decode()
    answer = markdown.split("## Answer 1")[1]
    assert answer.index("**REJECTED by clinician on") < answer.index("Hilum enlarged")
    pdf = PdfReader(io.BytesIO(exports.session_export(rejected.session, "pdf").content))
    text = " ".join(" ".join(page.extract_text().split()) for page in pdf.pages)
    answer = text.split("Answer 1")[1]
    assert answer.index("REJECTED by clinician on") < answer.index("Hilum enlarged")
    assert "Calls a normal hilum enlarged." in answer
