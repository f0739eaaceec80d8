"""The clinician's own things: staying signed in, drafts, presets, and the first administrator."""

from __future__ import annotations

from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.models import User
from django.core.exceptions import NON_FIELD_ERRORS
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from audit import trail
from chat import generation_settings, selectors, services
from chat.errors import Rejected
from chat.forms import FirstAdminForm, PresetForm
from chat.idle_sign_out import idle_seconds_left, note_activity
from chat.models import Preset
from chat.setup_link import first_admin_create, setup_token_valid
from chat.views.base import (
    user_session,
)


@require_POST
def stay_signed_in(request: HttpRequest) -> JsonResponse:
    """The warning's "Stay signed in": this request is the activity that keeps the session."""
    note_activity(request.session)
    return JsonResponse({"seconds_left": idle_seconds_left(request.session)})


@require_POST
def draft_save(request: HttpRequest) -> HttpResponse:
    """Keep what the composer of a chat holds (text, pending images) on the server.

    Saved as the clinician types, which is activity: typing keeps the session.
    """
    session = user_session(request, request.POST.get("session", ""))
    # A refusal (far over any limit) is a 400 with the reason: chat.middleware.RefusalMiddleware.
    services.draft_save(
        session=session,
        text=request.POST.get("content", ""),
        attachment_ids=request.POST.getlist("attachments"),
    )
    return HttpResponse(status=204)


@login_not_required
@require_http_methods(["GET", "POST"])
def first_admin_setup(request: HttpRequest, token: str) -> HttpResponse:
    """Create the first administrator from the one-time link printed at start-up."""
    if User.objects.exists() or not setup_token_valid(token):
        return render(request, "chat/setup_closed.html", status=404)
    form = FirstAdminForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = first_admin_create(form)
        if user is None:  # another post of the link was first
            return render(request, "chat/setup_closed.html", status=404)
        login(request, user)
        if request.htmx:
            return HttpResponseClientRedirect("/")
        return redirect("chat:home")
    return render(request, "chat/setup.html", {"form": form})


@require_http_methods(["GET", "POST"])
def presets(request: HttpRequest) -> HttpResponse:
    """The presets a user can choose; a POST adds one of their own."""
    return _presets_page(request, editing=None)


@require_POST
def preset_change(request: HttpRequest, preset_id: int) -> HttpResponse:
    preset = get_object_or_404(selectors.own_presets(request.user), pk=preset_id)
    return _presets_page(request, editing=preset)


def _presets_page(request: HttpRequest, *, editing: Preset | None) -> HttpResponse:
    error = None
    if request.method == "POST":
        form = PresetForm(
            request.POST,
            owner=request.user,
            preset=editing,
            max_length=generation_settings.bounds().max_system_prompt,
        )
        try:
            preset = form.save() if form.is_valid() else None
        except Rejected as rejected:  # a name the owner already uses
            form.add_error(None, str(rejected))
            preset = None
        if preset is None:
            error = form.errors[NON_FIELD_ERRORS][0]
        else:
            trail.record(trail.Action.PRESET_SAVE, request=request, target=preset)
            return redirect(f"{reverse('chat:presets')}#preset-{preset.pk}")
    context = {
        "builtin": selectors.presets_for(request.user).filter(owner__isnull=True),
        "own": selectors.own_presets(request.user),
        "editing": editing,
        "error": error,
        "form_data": request.POST if error else {},
        "max_length": generation_settings.bounds().max_system_prompt,
    }
    return render(request, "chat/presets.html", context, status=400 if error else 200)


@require_POST
def preset_delete(request: HttpRequest, preset_id: int) -> HttpResponse:
    preset = get_object_or_404(selectors.own_presets(request.user), pk=preset_id)
    services.preset_delete(owner=request.user, preset=preset)
    target = f"preset:{preset_id}"
    trail.record(trail.Action.PRESET_DELETE, request=request, target=target)
    return redirect("chat:presets")
