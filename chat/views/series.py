"""The pages' reads and writes of kept DICOM series (chat.series, chat.services.series):
the viewer's facts and slice values, and choosing the slices a message sends.
Thin: read through chat.series and selectors, write through services, render."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from chat import selectors, series, services
from chat.errors import Rejected
from chat.models import Attachment
from imaging.dicom.volume import Volume, VolumeUnreadable

PAGE = "chat/session.html"


@require_POST
def series_slices_choose(request: HttpRequest, session_id, attachment_id) -> HttpResponse:
    """Send other slices of a pending series: `count` from slice `start` to
    `end`; answer with the series' group for the composer, or, when the choice
    cannot be made, the group as it was and why."""
    session = get_object_or_404(selectors.sessions_for(request.user), pk=session_id)
    get_object_or_404(selectors.attachments_for(request.user), pk=attachment_id)
    try:
        chosen = services.series_slices_choose(
            owner=request.user,
            session=session,
            attachment_id=attachment_id,
            start=_whole_number(request.POST.get("start")),
            end=_whole_number(request.POST.get("end")),
            count=_whole_number(request.POST.get("count")),
            composer_ids=request.POST.getlist("attachments"),
        )
        attachments, alert = chosen.attachments, ""
    except Rejected as rejected:
        attachments, alert = selectors.pending_series_of(request.user, attachment_id), str(rejected)
    context = {
        "session": session,
        "pending": series.composer_items(attachments, fits=series.slices_that_fit(session)),
        "alert": alert,
    }
    return render(request, f"{PAGE}#attachments-added", context)


@require_GET
def attachment_series(request: HttpRequest, attachment_id) -> JsonResponse:
    """What the viewer needs to show the kept series of an image (its owner's only)."""
    attachment = _kept_series(request, attachment_id)
    with attachment.volume.open("rb") as kept:
        facts = _volume(kept).facts
    return JsonResponse(series.viewer_facts(attachment, facts))


@require_GET
def attachment_series_slice(request: HttpRequest, attachment_id, number: int) -> HttpResponse:
    """Slice `number` of an image's kept series: int16 values, little-endian (chat.series)."""
    attachment = _kept_series(request, attachment_id)
    with attachment.volume.open("rb") as kept:
        try:
            data = series.slice_bytes(_volume(kept), number)
        except IndexError:
            raise Http404 from None
        except VolumeUnreadable:
            message = "The kept series is damaged."
            return HttpResponse(message, status=500, content_type="text/plain")
    response = HttpResponse(data, content_type="application/octet-stream")
    response["X-Content-Type-Options"] = "nosniff"  # Cache-Control: no-store, site-wide
    return response


def _kept_series(request: HttpRequest, attachment_id) -> Attachment:
    attachment = get_object_or_404(selectors.attachments_for(request.user), pk=attachment_id)
    if not attachment.volume.name or not attachment.volume.storage.exists(attachment.volume.name):
        raise Http404("This image has no series kept with it.")
    return attachment


def _volume(kept) -> Volume:
    try:
        return Volume(kept)
    except VolumeUnreadable:
        raise Http404("The kept series could not be read.") from None


def _whole_number(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
