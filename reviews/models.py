"""Clinicians' reviews of answers."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AnswerReview(models.Model):
    """A clinician's judgement of an answer: reviewed or rejected, thumbs, a comment."""

    class Verdict(models.TextChoices):
        REVIEWED = "reviewed", "Reviewed"
        REJECTED = "rejected", "Rejected"

    class Rating(models.TextChoices):
        UP = "up", "Helpful"
        DOWN = "down", "Not helpful"

    message = models.ForeignKey("chat.Message", on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="reviews"
    )
    reviewer_name = models.CharField(max_length=150, help_text="Kept if the user goes.")
    verdict = models.CharField(max_length=16, choices=Verdict.choices, blank=True)
    rating = models.CharField(max_length=8, choices=Rating.choices, blank=True)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        # The table the chat app made: it stayed when the model moved here.
        db_table = "chat_answerreview"
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(fields=["message", "reviewer"], name="review_one_per_reviewer"),
        ]

    def __str__(self) -> str:
        verdict = self.get_verdict_display() or "Feedback"
        return f"{verdict} by {self.reviewer_name} on answer #{self.message_id}"
