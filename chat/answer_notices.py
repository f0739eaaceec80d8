"""What a reader must be told about an answer wherever it goes: that it was cut
off at its token limit, or that a clinician rejected it.

The page, the Copy button's text and the PDF and Markdown exports all word
these the same way, from here, so a rejected answer pasted into a chart still
says it was rejected.
"""

from __future__ import annotations

from django.utils import timezone

from chat.models import Message
from reviews.models import AnswerReview


def is_cut_off(message: Message) -> bool:
    """True for an answer the engine ended at its token budget (it can be continued)."""
    return message.status == Message.Status.COMPLETE and message.finish_reason == "length"


def cut_off_notice(message: Message) -> str:
    """ "Cut off at N tokens: …" for an answer stopped at its token limit, else ""."""
    if not is_cut_off(message):
        return ""
    tokens = message.completion_tokens or message.sampling.get("max_new_tokens") or "its"
    return f"Cut off at {tokens} tokens: the answer reached its token limit and is incomplete."


def rejections(message: Message) -> list[AnswerReview]:
    """The clinicians' reviews that rejected the answer, latest first."""
    return [r for r in message.reviews.all() if r.verdict == AnswerReview.Verdict.REJECTED]


def rejection_lines(message: Message) -> list[str]:
    """One "REJECTED by <reviewer> on <date>: <comment>" line per rejection."""
    lines = []
    for review in rejections(message):
        moment = f"{timezone.localtime(review.updated_at):%Y-%m-%d %H:%M %Z}"
        line = f"REJECTED by {review.reviewer_name} on {moment}"
        comment = " ".join(review.comment.split())
        lines.append(f"{line}: {comment}" if comment else f"{line}.")
    return lines
