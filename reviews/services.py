"""Writes of clinicians' reviews of answers: verdict, thumbs, comment."""

from __future__ import annotations

from django.db import transaction

from chat import serving
from chat.errors import Rejected
from chat.models import Message
from reviews.models import AnswerReview

UNCHANGED = object()


@transaction.atomic
def answer_review(
    *,
    message: Message,
    reviewer,
    verdict=UNCHANGED,
    rating=UNCHANGED,
    comment=UNCHANGED,
) -> AnswerReview:
    """Record `reviewer`'s judgement of an answer; what is not given stays as it was.

    `verdict` is "reviewed", "rejected" or "" (not yet); `rating` "up", "down"
    or "" (none). The reviewer and the time are kept. Raise Rejected for
    a question, an answer still being written, or a value that is not allowed.
    """
    if message.role != Message.Role.ASSISTANT:
        raise Rejected("Only answers can be reviewed.")
    if message.status == Message.Status.STREAMING:
        raise Rejected("Wait for the answer to finish before reviewing it.")
    if verdict is not UNCHANGED and verdict not in ("", *AnswerReview.Verdict.values):
        raise Rejected("A review is either reviewed or rejected.")
    if rating is not UNCHANGED and rating not in ("", *AnswerReview.Rating.values):
        raise Rejected("Rate an answer with thumbs up or down.")
    if comment is not UNCHANGED:
        comment = comment.strip()
        limit = serving.config().max_text_length
        if len(comment) > limit:
            raise Rejected(
                f"The comment is {len(comment):,} characters long; the limit is {limit:,}."
            )
    review, _ = AnswerReview.objects.select_for_update().get_or_create(
        message=message,
        reviewer=reviewer,
        defaults={"reviewer_name": reviewer.get_username()},
    )
    for field, value in (("verdict", verdict), ("rating", rating), ("comment", comment)):
        if value is not UNCHANGED:
            setattr(review, field, value)
    review.reviewer_name = reviewer.get_username()
    review.save()
    return review
