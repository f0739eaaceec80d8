"""Downloads for the patient's chart: a chat (Markdown, PDF), an answer's boxes and tables."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET

import exports
from audit import trail
from chat import selectors
from chat.views.base import (
    user_message,
    user_session,
)
from exports import tables
from exports.record import located_image


@require_GET
def session_export(request: HttpRequest, session_id, kind: str) -> HttpResponse:
    """The chat on show as a file for the patient's chart: Markdown ("md") or PDF
    ("pdf"), with the model's thinking when `thinking` is set."""
    session = user_session(request, session_id)
    if kind not in exports.KINDS:
        raise Http404
    thinking = bool(request.GET.get("thinking"))
    export = exports.session_export(session, kind, include_thinking=thinking)
    detail = f"{kind}, thinking {'included' if thinking else 'left out'}"
    trail.record(trail.Action.EXPORT, request=request, target=session, detail=detail)
    response = HttpResponse(export.content, content_type=export.content_type)
    response["Content-Disposition"] = content_disposition_header(True, export.filename)
    return response


@require_GET
def answer_boxes(request: HttpRequest, session_id, message_id: int) -> HttpResponse:
    """The answer's localization boxes drawn on the image they are about, as a PNG;
    404 when the answer holds none."""
    message = user_message(request, session_id, message_id)
    found = selectors.located_findings(message)
    png = located_image(found) if found else None
    if png is None:
        raise Http404
    response = HttpResponse(png, content_type="image/png")
    response["Cache-Control"] = "private, max-age=86400"  # an answer's text never changes
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_GET
def answer_table_csv(request: HttpRequest, session_id, message_id: int) -> HttpResponse:
    """The tables of an answer (lab values and units) as a CSV file; 404 when it has none."""
    message = user_message(request, session_id, message_id)
    content = tables.tables_csv(message.content) if message.role == "assistant" else ""
    if not content:
        raise Http404
    trail.record(
        trail.Action.EXPORT, request=request, target=message.session, detail="answer table, csv"
    )
    response = HttpResponse(content.encode("utf-8-sig"), content_type="text/csv; charset=utf-8")
    filename = f"answer-{message.pk}-table.csv"
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Cache-Control"] = "no-store"  # a patient's values: kept by no cache
    return response
