"""The chat pages. Thin: read through selectors, write through services, render."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.models import User
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from chat import answers, selectors, services
from chat.errors import MessageRejected
from chat.forms import FirstAdminForm
from chat.setup_link import setup_token_valid
from inference.worker import engine_worker


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Open the most recent chat, or a new one."""
    session = selectors.sessions_for(request.user).first()
    if session is None:
        session = services.session_create(
            owner=request.user, model_name=engine_worker().state.model
        )
    return redirect("chat:session", session_id=session.pk)


@require_POST
def session_new(request: HttpRequest) -> HttpResponse:
    session = services.session_start(owner=request.user, model_name=engine_worker().state.model)
    return redirect("chat:session", session_id=session.pk)


@require_GET
def session_detail(request: HttpRequest, session_id) -> HttpResponse:
    session = get_object_or_404(selectors.sessions_for(request.user), pk=session_id)
    worker = engine_worker()
    context = {
        "session": session,
        "sessions": selectors.sessions_for(request.user)[:200],
        "messages": selectors.messages_for(session),
        "engine": worker.state,
        "limits": settings.MEDSERVER,
        "streaming": any(
            answers.is_running(m.pk) for m in session.messages.filter(status="streaming")
        ),
    }
    return render(request, "chat/session.html", context)


@require_POST
def attachment_upload(request: HttpRequest, session_id) -> HttpResponse:
    """Store the chosen images; answer with their thumbnails for the composer."""
    get_object_or_404(selectors.sessions_for(request.user), pk=session_id)
    files = request.FILES.getlist("images")
    limit = settings.MEDSERVER.max_image_count
    error = None
    created = []
    if len(files) > limit:
        error = f"{len(files)} images chosen; at most {limit} per message."
    else:
        for upload in files:
            try:
                created.append(services.attachment_create(owner=request.user, upload=upload))
            except MessageRejected as rejected:
                error = str(rejected)
    context = {"attachments": created, "alert": error}
    return render(request, "chat/session.html#attachments-added", context)


@require_GET
def attachment_file(request: HttpRequest, attachment_id) -> FileResponse:
    """Serve an image to its owner only; anyone else gets 404."""
    attachment = get_object_or_404(selectors.attachments_for(request.user), pk=attachment_id)
    response = FileResponse(attachment.file.open("rb"), content_type=attachment.content_type)
    response["Cache-Control"] = "private, max-age=86400"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_not_required
@require_http_methods(["GET", "POST"])
def first_admin_setup(request: HttpRequest, token: str) -> HttpResponse:
    """Create the first administrator from the one-time link printed at start-up."""
    if User.objects.exists() or not setup_token_valid(token):
        return render(request, "chat/setup_closed.html", status=404)
    form = FirstAdminForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user)
        if request.htmx:
            return HttpResponseClientRedirect("/")
        return redirect("chat:home")
    return render(request, "chat/setup.html", {"form": form})


@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    """List the user's API tokens; a POST creates one and shows its key once."""
    created_key = None
    if request.method == "POST":
        token, created_key = services.api_token_create(
            owner=request.user, name=request.POST.get("name", "")
        )
        if request.htmx:
            context = {"token": token, "created_key": created_key}
            return render(request, "chat/api_tokens.html#token-created", context)
    tokens = selectors.api_tokens_for(request.user)
    return render(request, "chat/api_tokens.html", {"tokens": tokens, "created_key": created_key})


@require_POST
def api_token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    services.api_token_revoke(owner=request.user, token_id=token_id)
    token = get_object_or_404(selectors.api_tokens_for(request.user), pk=token_id)
    if request.htmx:
        return render(request, "chat/api_tokens.html#token-row", {"token": token})
    return redirect("chat:api-tokens")
