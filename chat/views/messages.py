"""Messages in a chat: show, edit, choose a version, delete, send without the socket, images."""

from __future__ import annotations

from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from audit import trail
from chat import answers, limits, selectors, series, services, serving, stream_html
from chat.errors import LimitExceeded, Rejected
from chat.models import Attachment
from chat.views.base import (
    PAGE,
    user_message,
    user_session,
    with_toast,
)
from imaging.priors import UNIT_CHOICES, IntervalRejected, interval_from_form


@require_GET
def message_detail(request: HttpRequest, session_id, message_id: int) -> HttpResponse:
    """One message as the page shows it (after an edit is cancelled)."""
    message = user_message(request, session_id, message_id)
    message.versions = selectors.versions_of(message)
    return render(request, f"{PAGE}#message", {"message": message})


@require_GET
def message_edit(request: HttpRequest, session_id, message_id: int) -> HttpResponse:
    """The form that edits a question in place; it is sent over the chat socket."""
    message = user_message(request, session_id, message_id)
    return render(
        request, f"{PAGE}#message-edit", {"message": message, "limits": serving.page_limits()}
    )


@require_POST
def message_select(request: HttpRequest, session_id, message_id: int) -> HttpResponse:
    """Show another version of a turn (‹ n/m ›)."""
    return _change_conversation(request, session_id, message_id, services.message_select)


@require_POST
def message_delete(request: HttpRequest, session_id, message_id: int) -> HttpResponse:
    return _change_conversation(
        request,
        session_id,
        message_id,
        services.message_delete,
        done="Message deleted.",
        action=trail.Action.MESSAGE_DELETE,
    )


def _change_conversation(
    request, session_id, message_id, change, done: str = "", action: str = ""
) -> HttpResponse:
    """Apply `change` to a message (recording `action` in the audit trail); answer
    with the conversation as it now is, which every other open page of the session
    is sent too."""
    message = user_message(request, session_id, message_id)
    change(message=message)  # a refusal is shown by chat.middleware.RefusalMiddleware
    if action:
        trail.record(action, request=request, target=f"message:{message_id}")
    if not request.htmx:
        return redirect("chat:session", session_id=message.session_id)
    html = stream_html.conversation(message.session)
    # Other pages of this session (another tab, a colleague's screen) follow.
    async_to_sync(get_channel_layer().group_send)(
        answers.session_group(message.session_id), {"type": "chat.html", "html": html}
    )
    response = HttpResponse(html)
    return with_toast(response, done) if done else response


@limits.generates
@require_POST
async def message_post(request: HttpRequest, session_id) -> HttpResponse:
    """Send a message without the chat socket, for networks that block WebSockets.

    The same service saves it and the same task writes the answer; the page
    then follows the answer by polling the message (see static/js/chat.js).
    """
    user = await request.auser()
    session = await sync_to_async(get_object_or_404)(selectors.sessions_for(user), pk=session_id)
    try:
        html = await answers.ask(
            user,
            session,
            text=request.POST.get("content", ""),
            attachment_ids=request.POST.getlist("attachments"),
        )
    except (LimitExceeded, Rejected) as error:
        return HttpResponse(stream_html.composer_alert(str(error)))
    return HttpResponse(html + stream_html.composer_sent())


@require_POST
def attachment_upload(request: HttpRequest, session_id) -> HttpResponse:
    """Store the chosen images and DICOM files (single, series, zipped); answer with
    their thumbnails for the composer, and what the clinician should know."""
    session = user_session(request, session_id)
    upload = services.attachments_upload(
        owner=request.user,
        session=session,
        uploads=request.FILES.getlist("images"),
        window=request.POST.get("window", ""),
        magnification=request.POST.get("magnification", ""),
    )
    context = {
        "session": session,
        "pending": series.composer_items(upload.attachments, fits=series.slices_that_fit(session)),
        "alert": " ".join(upload.errors),
        "notice": " ".join(upload.notices),
        "study_units": UNIT_CHOICES,
    }
    return render(request, f"{PAGE}#attachments-added", context)


@require_POST
def attachment_study(request: HttpRequest, attachment_id) -> HttpResponse:
    """Mark an image waiting to be sent, with the images uploaded with it, as a
    prior study taken `amount` `unit` before the current one (`prior` set) or as
    the current study; answer with their thumbnails, swapped in place."""
    try:
        prior = None
        if request.POST.get("prior"):
            prior = interval_from_form(request.POST.get("amount"), request.POST.get("unit"))
        marked = services.attachments_mark_study(
            owner=request.user, attachment_id=attachment_id, prior=prior
        )
    except Attachment.DoesNotExist:
        raise Http404("No such image waiting to be sent.") from None
    except IntervalRejected as rejected:
        context = {"alert": str(rejected), "oob": True}
        return render(request, f"{PAGE}#composer-alert", context)
    context = {"attachments": marked, "oob": True, "study_units": UNIT_CHOICES}
    return render(request, f"{PAGE}#study-marked", context)


@require_GET
def attachment_file(request: HttpRequest, attachment_id) -> FileResponse:
    """Serve an image to its owner only; anyone else gets 404."""
    attachment = get_object_or_404(selectors.attachments_for(request.user), pk=attachment_id)
    response = FileResponse(attachment.file.open("rb"), content_type=attachment.content_type)
    response["X-Content-Type-Options"] = "nosniff"  # Cache-Control: no-store, site-wide
    return response
