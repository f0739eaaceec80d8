"""The chat page and the sidebar: open, list, search, rename, delete and configure chats."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from audit import trail
from chat import generation_settings, selectors, series, services, serving
from chat.errors import Rejected
from chat.forms import SessionSettingsForm
from chat.idle_sign_out import idle_seconds_left
from chat.models import Message
from chat.serving import engine_worker
from chat.views.base import (
    PAGE,
    SIDEBAR,
    TOPBAR,
    current_session,
    user_session,
    with_toast,
)
from imaging.dicom.windows import WINDOW_CHOICES
from imaging.priors import UNIT_CHOICES
from imaging.slides import DEFAULT_MAGNIFICATION, MAGNIFICATIONS
from inference.hardware import gpu_facts


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
    session = services.session_for_new_chat(
        owner=request.user, model_name=engine_worker().state.model
    )
    return redirect("chat:session", session_id=session.pk)


@require_GET
def session_detail(request: HttpRequest, session_id) -> HttpResponse:
    session = user_session(request, session_id)
    trail.record(trail.Action.SESSION_VIEW, request=request, target=session)
    path = selectors.active_path(session)
    draft = selectors.draft_for(session)
    context = {
        "session": session,
        "sessions": selectors.sessions_for(request.user)[:200],
        "messages": path,
        "stamp": selectors.conversation_stamp(path),
        "limits": serving.page_limits(),
        "bounds": generation_settings.bounds(),
        "can_think": generation_settings.can_think(),
        "presets": selectors.presets_for(request.user),
        "dicom_windows": WINDOW_CHOICES,
        "slide_magnifications": MAGNIFICATIONS,
        "default_magnification": DEFAULT_MAGNIFICATION,
        "study_units": UNIT_CHOICES,
        "streaming": any(m.status == Message.Status.STREAMING for m in path),
        "draft": draft,
        "pending": series.composer_items(draft.attachments, fits=series.slices_that_fit(session))
        if draft
        else [],
        **_status_context(request),
    }
    return render(request, PAGE, context)


@require_GET
def status(request: HttpRequest) -> HttpResponse:
    """The status widget's facts, polled by the page."""
    return render(request, f"{TOPBAR}#status-update", _status_context(request))


def _status_context(request: HttpRequest) -> dict:
    worker = engine_worker()
    show_hardware = serving.config().show_hardware_stats
    return {
        # How long until the idle sign-out: the page warns a minute before.
        "idle_seconds_left": idle_seconds_left(request.session),
        "engine": worker.state,
        "queue_depth": worker.queue_depth,
        "show_hardware": show_hardware,
        "gpus": gpu_facts() if show_hardware else [],
    }


@require_GET
def session_list(request: HttpRequest) -> HttpResponse:
    """The sidebar's chats, those matching `q` (title or any message) when given."""
    query = request.GET.get("q", "")
    sessions = list(selectors.sessions_search(request.user, query)[:200])
    # Under each chat found by its messages, the words around the match.
    snippets = selectors.search_snippets(sessions, query)
    for item in sessions:
        item.snippet = snippets.get(item.pk)
    context = {
        "sessions": sessions,
        "query": query,
        "session": current_session(request),
    }
    return render(request, f"{SIDEBAR}#session-list", context)


@require_GET
def session_item(request: HttpRequest, session_id) -> HttpResponse:
    context = {"item": user_session(request, session_id), "session": current_session(request)}
    return render(request, f"{SIDEBAR}#session-item", context)


@require_http_methods(["GET", "POST"])
def session_rename(request: HttpRequest, session_id) -> HttpResponse:
    """GET: the rename form in place of the chat's entry; POST: save the title."""
    item = user_session(request, session_id)
    context = {"item": item, "session": current_session(request)}
    if request.method == "GET":
        return render(request, f"{SIDEBAR}#session-rename", context)
    try:
        services.session_rename(session=item, title=request.POST.get("title", ""))
    except Rejected as error:
        return render(request, f"{SIDEBAR}#session-rename", {**context, "error": str(error)})
    # The new title is not recorded: titles come from questions, and the audit trail,
    # which nothing may change, must hold no patient content (erase_user relies on it).
    trail.record(trail.Action.SESSION_RENAME, request=request, target=item)
    if not request.htmx:
        return redirect("chat:session", session_id=item.pk)
    response = render(request, f"{SIDEBAR}#session-item", context)
    if context["session"] and context["session"].pk == item.pk:  # the chat on show: its title too
        response.content += render_to_string(
            f"{TOPBAR}#topbar-title", {"session": item, "oob": True}
        ).encode()
    return with_toast(response, "Chat renamed.")


@require_POST
def session_delete(request: HttpRequest, session_id) -> HttpResponse:
    item = user_session(request, session_id)
    current = current_session(request)
    on_show = current is None or current.pk == item.pk
    target = f"chatsession:{item.pk}"  # the row is gone after this
    services.session_delete(session=item)  # a refusal: chat.middleware.RefusalMiddleware
    trail.record(trail.Action.SESSION_DELETE, request=request, target=target)
    if on_show or not request.htmx:
        home = reverse("chat:home")
        return HttpResponseClientRedirect(home) if request.htmx else redirect(home)
    return with_toast(HttpResponse(""), "Chat deleted.")


@require_POST
def session_thinking(request: HttpRequest, session_id) -> HttpResponse:
    session = user_session(request, session_id)
    services.session_set_thinking(session=session, thinking=bool(request.POST.get("thinking")))
    if not request.htmx:
        return redirect("chat:session", session_id=session.pk)
    state = "on" if session.thinking else "off"
    response = render(request, f"{TOPBAR}#thinking-switch", {"session": session})
    return with_toast(response, f"Thinking {state} for this chat.")


@require_POST
def session_settings(request: HttpRequest, session_id) -> HttpResponse:
    session = user_session(request, session_id)
    form = SessionSettingsForm(request.POST, session=session)
    error = None
    if form.is_valid():
        form.save()
    else:
        error = form.first_error()
    if not request.htmx:
        return redirect("chat:session", session_id=session.pk)
    if error:
        session.refresh_from_db()
    context = {
        "session": session,
        "bounds": generation_settings.bounds(),
        "presets": selectors.presets_for(request.user),
        "settings_error": error,
        "saved": error is None,
        "limits": serving.page_limits(),
        "dicom_windows": WINDOW_CHOICES,
        "slide_magnifications": MAGNIFICATIONS,
        "default_magnification": DEFAULT_MAGNIFICATION,
        "study_units": UNIT_CHOICES,
    }
    response = render(request, f"{TOPBAR}#settings-form", context)
    return response if error else with_toast(response, "Settings saved.")
