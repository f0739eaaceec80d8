"""Answer reviews as CSV, for the clinic's quality review.

Cells that a spreadsheet would run as a formula (starting with =, +, -, @ or
a control character) are prefixed with an apostrophe, as OWASP advises.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from django.db.models import QuerySet
from django.utils import timezone

from reviews.models import AnswerReview

COLUMNS = (
    "review_id",
    "reviewed_at",
    "reviewer",
    "verdict",
    "rating",
    "comment",
    "answer_id",
    "answer_status",
    "session_id",
    "clinician",
    "model",
    "engine",
    "quantization",
    "preset",
    "preset_version",
    "temperature",
    "top_p",
    "thinking",
    "question",
    "answer",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def reviews_for_export(reviews: QuerySet[AnswerReview]) -> QuerySet[AnswerReview]:
    return reviews.select_related("message__session__owner", "message__parent").order_by(
        "updated_at", "pk"
    )


def review_rows(reviews: Iterable[AnswerReview]) -> Iterator[list[str]]:
    """One row per review, the columns of COLUMNS, as text."""
    for review in reviews:
        answer = review.message
        sampling = answer.sampling or {}
        question = answer.parent.content if answer.parent else ""
        yield [
            str(review.pk),
            timezone.localtime(review.updated_at).isoformat(timespec="seconds"),
            review.reviewer_name,
            review.verdict,
            review.rating,
            review.comment,
            str(answer.pk),
            answer.status,
            str(answer.session_id),
            answer.session.owner.get_username(),
            answer.model_name,
            answer.engine,
            answer.quantization,
            answer.preset_name,
            "" if answer.preset_version is None else str(answer.preset_version),
            _text(sampling.get("temperature")),
            _text(sampling.get("top_p")),
            _text(sampling.get("thinking")),
            question,
            answer.content,
        ]


def reviews_csv_lines(reviews: QuerySet[AnswerReview]) -> Iterator[str]:
    """The CSV file, header first, a line (or a few, for multi-line text) at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in (list(COLUMNS), *review_rows(reviews_for_export(reviews).iterator())):
        writer.writerow([_safe_cell(cell) for cell in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def _safe_cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def _text(value) -> str:
    return "" if value is None else str(value)
