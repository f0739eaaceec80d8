"""Clinicians' reviews of answers: thumbs, verdict and comment, in the page, admin and CSV."""

from __future__ import annotations

import csv
import io

import pytest

from audit.models import AuditEvent
from chat import services
from chat.errors import Rejected
from chat.models import Message
from reviews import services as review_services
from reviews.export import COLUMNS
from reviews.models import AnswerReview
from tests.chat.conversation import exchange

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def answer(user):
    session = services.session_create(owner=user, model_name="demo")
    question = "=cmd|' /C calc'!A0 CXR?"
    return exchange(session, question, "No acute findings.", quantization="none")[1]


def _url(answer) -> str:
    return f"/chat/{answer.session_id}/messages/{answer.pk}/review/"


def test_a_review_keeps_who_and_when_and_changes_only_what_is_given(answer, user):
    review = review_services.answer_review(message=answer, reviewer=user, rating="up")
    assert (review.reviewer_name, review.verdict, review.rating) == ("clinician", "", "up")
    first_time = review.updated_at

    review_services.answer_review(
        message=answer, reviewer=user, verdict="rejected", comment=" Wrong. "
    )
    review.refresh_from_db()
    assert (review.verdict, review.rating, review.comment) == ("rejected", "up", "Wrong.")
    assert review.updated_at >= first_time
    assert AnswerReview.objects.count() == 1  # one per reviewer and answer


@pytest.mark.parametrize(
    "change", [{"verdict": "approved"}, {"rating": "5"}, {"comment": "x" * 50_001}]
)
def test_a_review_with_a_value_not_allowed_is_refused(answer, user, change):
    with pytest.raises(Rejected):
        review_services.answer_review(message=answer, reviewer=user, **change)
    assert not AnswerReview.objects.exists()


def test_questions_and_answers_being_written_cannot_be_reviewed(answer, user):
    with pytest.raises(Rejected, match="Only answers"):
        review_services.answer_review(message=answer.parent, reviewer=user, rating="up")
    Message.objects.filter(pk=answer.pk).update(status=Message.Status.STREAMING)
    answer.refresh_from_db()
    with pytest.raises(Rejected, match="Wait for the answer"):
        review_services.answer_review(message=answer, reviewer=user, rating="up")


def test_thumbs_in_the_page_toggle_and_show_pressed(client, user, answer, engine):
    client.force_login(user)
    response = client.post(_url(answer), {"rating": "up"}, **HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert 'aria-pressed="true"' in body and 'data-rating="up"' in body
    # Pressed again, it clears (the button sends an empty rating).
    assert '"rating": ""' in body
    client.post(_url(answer), {"rating": ""}, **HTMX)
    assert AnswerReview.objects.get().rating == ""
    event = AuditEvent.objects.filter(action="answer_review").first()
    assert event.target == f"message:{answer.pk}" and event.username == "clinician"


def test_a_verdict_with_a_comment_shows_on_the_answer_after_reload(client, user, answer, engine):
    client.force_login(user)
    client.post(
        _url(answer), {"verdict": "rejected", "comment": "Missed the pneumothorax."}, **HTMX
    )
    page = client.get(f"/chat/{answer.session_id}/").content.decode()
    assert 'data-verdict="rejected"' in page
    assert "Rejected</span> by clinician" in page
    # The rejection's comment is in its banner; the form comes when the review is opened.
    assert "REJECTED by clinician" in page and "Missed the pneumothorax.</p>" in page
    assert "Missed the pneumothorax.</textarea>" not in page
    form = client.get(_url(answer), **HTMX).content.decode()
    assert "Missed the pneumothorax.</textarea>" in form
    assert 'value="rejected" checked' in form


def test_a_refused_review_is_a_toast_and_changes_nothing(client, user, answer, engine):
    client.force_login(user)
    response = client.post(_url(answer), {"verdict": "maybe"}, **HTMX)
    assert response["HX-Reswap"] == "none"
    assert "reviewed or rejected" in response.content.decode()
    assert not AnswerReview.objects.exists()


def test_reviews_are_listed_and_filterable_in_admin(client, admin_user, user, answer):
    review_services.answer_review(
        message=answer, reviewer=user, verdict="rejected", comment="Unsafe dose"
    )
    client.force_login(admin_user)
    listing = client.get("/admin/reviews/answerreview/?verdict__exact=rejected").content.decode()
    assert "Unsafe dose" in listing and "clinician" in listing
    assert (
        "Unsafe dose"
        not in client.get("/admin/reviews/answerreview/?verdict__exact=reviewed").content.decode()
    )
    # And on the answer itself.
    message_page = client.get(f"/admin/chat/message/{answer.pk}/change/").content.decode()
    assert "Unsafe dose" in message_page


def test_reviews_export_as_csv_from_admin_with_provenance_and_no_formulas(
    client, admin_user, user, answer
):
    review_services.answer_review(message=answer, reviewer=user, verdict="reviewed", rating="up")
    client.force_login(admin_user)
    response = client.post(
        "/admin/reviews/answerreview/",
        {"action": "export_csv", "_selected_action": [str(AnswerReview.objects.get().pk)]},
    )
    assert response["Content-Type"] == "text/csv"
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == list(COLUMNS)
    row = dict(zip(COLUMNS, rows[1], strict=True))
    assert (row["reviewer"], row["verdict"], row["rating"]) == ("clinician", "reviewed", "up")
    assert (row["engine"], row["quantization"], row["clinician"]) == (
        "transformers",
        "none",
        "clinician",
    )
    assert row["answer"] == "No acute findings."
    # A question that a spreadsheet would run as a formula is kept as text.
    assert row["question"].startswith("'=cmd")
    assert AuditEvent.objects.filter(action="reviews_export", detail="1 reviews").exists()
