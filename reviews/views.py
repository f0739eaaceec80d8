"""A clinician's review of an answer, in the page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_http_methods

from audit import trail
from chat.views.base import (
    user_message,
)
from reviews import services


@require_http_methods(["GET", "POST"])
def answer_review(request: HttpRequest, session_id, message_id: int) -> HttpResponse:
    """Record the clinician's verdict, thumbs or comment on an answer (GET: the form)."""
    message = user_message(request, session_id, message_id)
    if request.method == "GET":
        review = message.reviews.filter(reviewer=request.user).first()
        context = {"message": message, "review": review}
        return render(request, "chat/review.html#review-form", context)
    changes = {
        field: request.POST[field]
        for field in ("verdict", "rating", "comment")
        if field in request.POST
    }
    # A refusal is shown by chat.middleware.RefusalMiddleware.
    review = services.answer_review(message=message, reviewer=request.user, **changes)
    detail = f"verdict={review.verdict or '-'} rating={review.rating or '-'}"
    trail.record(trail.Action.ANSWER_REVIEW, request=request, target=message, detail=detail)
    if not request.htmx:
        return redirect("chat:session", session_id=message.session_id)
    response = render(
        request, "chat/review.html#answer-review", {"message": message, "review": review}
    )
    # The verdict shows above the answer and travels with what Copy takes.
    verdict = render_to_string("chat/review.html#answer-verdict", {"message": message, "oob": True})
    response.content += verdict.encode()
    return response
