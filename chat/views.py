"""The chat pages. Thin: read through selectors, write through services, render."""

from __future__ import annotations

from collections.abc import Callable

from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from chat import (
    answer_tables,
    answers,
    audit,
    exports,
    generation_settings,
    limits,
    selectors,
    series,
    services,
    stream_html,
)
from chat.errors import LimitExceeded, MessageRejected, SettingsRejected
from chat.forms import FirstAdminForm, PresetForm, SessionSettingsForm
from chat.models import ChatSession, Message, Preset
from chat.setup_link import first_admin_create, setup_token_valid
from imaging.dicom.windows import WINDOW_CHOICES
from inference.hardware import gpu_facts
from inference.worker import engine_worker
from medserver_site.middleware import idle_seconds_left, note_activity

PAGE = "chat/session.html"
SIDEBAR = "chat/sidebar.html"
TOPBAR = "chat/topbar.html"


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
    session = _session(request, session_id)
    audit.record(audit.Action.SESSION_VIEW, request=request, target=session)
    path = selectors.active_path(session)
    draft = selectors.draft_for(session)
    context = {
        "session": session,
        "sessions": selectors.sessions_for(request.user)[:200],
        "messages": path,
        "stamp": selectors.conversation_stamp(path),
        "limits": settings.MEDSERVER,
        "bounds": generation_settings.bounds(),
        "can_think": generation_settings.can_think(),
        "presets": selectors.presets_for(request.user),
        "dicom_windows": WINDOW_CHOICES,
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
    show_hardware = settings.MEDSERVER.show_hardware_stats
    return {
        # How long until the idle sign-out: the page warns a minute before.
        "idle_seconds_left": idle_seconds_left(request.session),
        "engine": worker.state,
        "queue_depth": worker.queue_depth,
        "show_hardware": show_hardware,
        "gpus": gpu_facts() if show_hardware else [],
    }


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
    session = _session(request, request.POST.get("session", ""))
    try:
        services.draft_save(
            session=session,
            text=request.POST.get("content", ""),
            attachment_ids=request.POST.getlist("attachments"),
        )
    except MessageRejected as error:
        return HttpResponse(str(error), status=400, content_type="text/plain")
    return HttpResponse(status=204)


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
        "session": _current(request),
    }
    return render(request, f"{SIDEBAR}#session-list", context)


@require_GET
def session_item(request: HttpRequest, session_id) -> HttpResponse:
    context = {"item": _session(request, session_id), "session": _current(request)}
    return render(request, f"{SIDEBAR}#session-item", context)


@require_http_methods(["GET", "POST"])
def session_rename(request: HttpRequest, session_id) -> HttpResponse:
    """GET: the rename form in place of the chat's entry; POST: save the title."""
    item = _session(request, session_id)
    context = {"item": item, "session": _current(request)}
    if request.method == "GET":
        return render(request, f"{SIDEBAR}#session-rename", context)
    try:
        services.session_rename(session=item, title=request.POST.get("title", ""))
    except SettingsRejected as error:
        return render(request, f"{SIDEBAR}#session-rename", {**context, "error": str(error)})
    # The new title is not recorded: titles come from questions, and the audit trail,
    # which nothing may change, must hold no patient content (erase_user relies on it).
    audit.record(audit.Action.SESSION_RENAME, request=request, target=item)
    if not request.htmx:
        return redirect("chat:session", session_id=item.pk)
    response = render(request, f"{SIDEBAR}#session-item", context)
    if context["session"] and context["session"].pk == item.pk:  # the chat on show: its title too
        response.content += render_to_string(
            f"{TOPBAR}#topbar-title", {"session": item, "oob": True}
        ).encode()
    return _with_toast(response, "Chat renamed.")


@require_POST
def session_delete(request: HttpRequest, session_id) -> HttpResponse:
    item = _session(request, session_id)
    current = _current(request)
    on_show = current is None or current.pk == item.pk
    try:
        target = f"chatsession:{item.pk}"  # the row is gone after this
        services.session_delete(session=item)
    except MessageRejected as error:
        return _toast_only(str(error), kind="error")
    audit.record(audit.Action.SESSION_DELETE, request=request, target=target)
    if on_show or not request.htmx:
        home = reverse("chat:home")
        return HttpResponseClientRedirect(home) if request.htmx else redirect(home)
    return _with_toast(HttpResponse(""), "Chat deleted.")


@require_POST
def session_thinking(request: HttpRequest, session_id) -> HttpResponse:
    session = _session(request, session_id)
    services.session_set_thinking(session=session, thinking=bool(request.POST.get("thinking")))
    if not request.htmx:
        return redirect("chat:session", session_id=session.pk)
    state = "on" if session.thinking else "off"
    response = render(request, f"{TOPBAR}#thinking-switch", {"session": session})
    return _with_toast(response, f"Thinking {state} for this chat.")


@require_POST
def session_settings(request: HttpRequest, session_id) -> HttpResponse:
    session = _session(request, session_id)
    form = SessionSettingsForm(request.POST)
    error = None
    if not form.is_valid():
        error = form.first_error()
    else:
        try:
            choice = form.cleaned_data.pop("preset")
            preset = _chosen_preset(request.user, choice)
            services.session_configure(session=session, preset=preset, **form.cleaned_data)
        except SettingsRejected as rejected:
            error = str(rejected)
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
        "limits": settings.MEDSERVER,
        "dicom_windows": WINDOW_CHOICES,
    }
    response = render(request, f"{TOPBAR}#settings-form", context)
    return response if error else _with_toast(response, "Settings saved.")


def _chosen_preset(user, preset_id: int | None):
    """The preset picked in the settings form (None: no preset)."""
    if preset_id is None:
        return None
    try:
        return selectors.presets_for(user).get(pk=preset_id)
    except Preset.DoesNotExist:
        raise SettingsRejected("That preset is no longer available; choose another.") from None


@require_GET
def session_export(request: HttpRequest, session_id, kind: str) -> HttpResponse:
    """The chat on show as a file for the patient's chart: Markdown ("md") or PDF
    ("pdf"), with the model's thinking when `thinking` is set."""
    session = _session(request, session_id)
    if kind not in exports.KINDS:
        raise Http404
    thinking = bool(request.GET.get("thinking"))
    export = exports.session_export(session, kind, include_thinking=thinking)
    detail = f"{kind}, thinking {'included' if thinking else 'left out'}"
    audit.record(audit.Action.EXPORT, request=request, target=session, detail=detail)
    response = HttpResponse(export.content, content_type=export.content_type)
    response["Content-Disposition"] = content_disposition_header(True, export.filename)
    return response


@require_GET
def answer_boxes(request: HttpRequest, session_id, message_id: int) -> HttpResponse:
    """The answer's localization boxes drawn on the image they are about, as a PNG;
    404 when the answer holds none."""
    message = _message(request, session_id, message_id)
    found = selectors.located_findings(message)
    png = exports.located_image(found) if found else None
    if png is None:
        raise Http404
    response = HttpResponse(png, content_type="image/png")
    response["Cache-Control"] = "private, max-age=86400"  # an answer's text never changes
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_GET
def answer_table_csv(request: HttpRequest, session_id, message_id: int) -> HttpResponse:
    """The tables of an answer (lab values and units) as a CSV file; 404 when it has none."""
    message = _message(request, session_id, message_id)
    content = answer_tables.tables_csv(message.content) if message.role == "assistant" else ""
    if not content:
        raise Http404
    audit.record(
        audit.Action.EXPORT, request=request, target=message.session, detail="answer table, csv"
    )
    response = HttpResponse(content.encode("utf-8-sig"), content_type="text/csv; charset=utf-8")
    filename = f"answer-{message.pk}-table.csv"
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Cache-Control"] = "no-store"  # a patient's values: kept by no cache
    return response


@require_GET
def message_detail(request: HttpRequest, session_id, message_id: int) -> HttpResponse:
    """One message as the page shows it (after an edit is cancelled)."""
    message = _message(request, session_id, message_id)
    message.versions = selectors.versions_of(message)
    return render(request, f"{PAGE}#message", {"message": message})


@require_GET
def message_edit(request: HttpRequest, session_id, message_id: int) -> HttpResponse:
    """The form that edits a question in place; it is sent over the chat socket."""
    message = _message(request, session_id, message_id)
    return render(
        request, f"{PAGE}#message-edit", {"message": message, "limits": settings.MEDSERVER}
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
        action=audit.Action.MESSAGE_DELETE,
    )


def _change_conversation(
    request, session_id, message_id, change, done: str = "", action: str = ""
) -> HttpResponse:
    """Apply `change` to a message (recording `action` in the audit trail); answer
    with the conversation as it now is, which every other open page of the session
    is sent too."""
    message = _message(request, session_id, message_id)
    try:
        change(message=message)
    except MessageRejected as error:
        return _toast_only(str(error), kind="error")
    if action:
        audit.record(action, request=request, target=f"message:{message_id}")
    if not request.htmx:
        return redirect("chat:session", session_id=message.session_id)
    html = stream_html.conversation(message.session)
    # Other pages of this session (another tab, a colleague's screen) follow.
    async_to_sync(get_channel_layer().group_send)(
        answers.session_group(message.session_id), {"type": "chat.html", "html": html}
    )
    response = HttpResponse(html)
    return _with_toast(response, done) if done else response


@require_POST
def attachment_upload(request: HttpRequest, session_id) -> HttpResponse:
    """Store the chosen images and DICOM files (single, series, zipped); answer with
    their thumbnails for the composer, and what the clinician should know."""
    session = _session(request, session_id)
    upload = services.attachments_upload(
        owner=request.user,
        session=session,
        uploads=request.FILES.getlist("images"),
        window=request.POST.get("window", ""),
    )
    context = {
        "session": session,
        "pending": series.composer_items(upload.attachments, fits=series.slices_that_fit(session)),
        "alert": " ".join(upload.errors),
        "notice": " ".join(upload.notices),
    }
    return render(request, f"{PAGE}#attachments-added", context)


@require_GET
def attachment_file(request: HttpRequest, attachment_id) -> FileResponse:
    """Serve an image to its owner only; anyone else gets 404."""
    attachment = get_object_or_404(selectors.attachments_for(request.user), pk=attachment_id)
    response = FileResponse(attachment.file.open("rb"), content_type=attachment.content_type)
    response["X-Content-Type-Options"] = "nosniff"  # Cache-Control: no-store, site-wide
    return response


@require_http_methods(["GET", "POST"])
def answer_review(request: HttpRequest, session_id, message_id: int) -> HttpResponse:
    """Record the clinician's verdict, thumbs or comment on an answer (GET: the form)."""
    message = _message(request, session_id, message_id)
    if request.method == "GET":
        review = message.reviews.filter(reviewer=request.user).first()
        context = {"message": message, "review": review}
        return render(request, "chat/review.html#review-form", context)
    changes = {
        field: request.POST[field]
        for field in ("verdict", "rating", "comment")
        if field in request.POST
    }
    try:
        review = services.answer_review(message=message, reviewer=request.user, **changes)
    except MessageRejected as rejected:
        return _toast_only(str(rejected), kind="error")
    detail = f"verdict={review.verdict or '-'} rating={review.rating or '-'}"
    audit.record(audit.Action.ANSWER_REVIEW, request=request, target=message, detail=detail)
    if not request.htmx:
        return redirect("chat:session", session_id=message.session_id)
    response = render(
        request, "chat/review.html#answer-review", {"message": message, "review": review}
    )
    # The verdict shows above the answer and travels with what Copy takes.
    verdict = render_to_string("chat/review.html#answer-verdict", {"message": message, "oob": True})
    response.content += verdict.encode()
    return response


def _session(request: HttpRequest, session_id) -> ChatSession:
    try:
        return get_object_or_404(selectors.sessions_for(request.user), pk=session_id)
    except ValidationError:  # not a session id at all
        raise Http404 from None


def _current(request: HttpRequest) -> ChatSession | None:
    """The session of the page a sidebar request comes from (its `current` value)."""
    current = request.GET.get("current") or request.POST.get("current")
    try:
        return selectors.session_for(request.user, current) if current else None
    except (ChatSession.DoesNotExist, ValidationError):
        return None


def _message(request: HttpRequest, session_id, message_id: int) -> Message:
    session = _session(request, session_id)
    return get_object_or_404(session.messages.select_related("session"), pk=message_id)


def _with_toast(response: HttpResponse, text: str, *, kind: str = "info") -> HttpResponse:
    """Add a notice to an htmx response; htmx shows it out of band."""
    response.content += stream_html.toast(text, kind=kind).encode()
    return response


def _toast_only(text: str, *, kind: str) -> HttpResponse:
    """A refusal: only a notice, nothing else on the page changes."""
    response = HttpResponse(stream_html.toast(text, kind=kind))
    response["HX-Reswap"] = "none"
    return response


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
def api_tokens(request: HttpRequest) -> HttpResponse:
    """List the user's API tokens; a POST creates one and shows its key once."""
    created_key = None
    if request.method == "POST":
        token, created_key = services.api_token_create(
            owner=request.user, name=request.POST.get("name", "")
        )
        audit.record(audit.Action.API_TOKEN_CREATE, request=request, target=token)
        if request.htmx:
            context = {"token": token, "created_key": created_key}
            return render(request, "chat/api_tokens.html#token-created", context)
    tokens = selectors.api_tokens_for(request.user)
    return render(request, "chat/api_tokens.html", {"tokens": tokens, "created_key": created_key})


@require_POST
def api_token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    if services.api_token_revoke(owner=request.user, token_id=token_id):
        audit.record(audit.Action.API_TOKEN_REVOKE, request=request, target=f"apitoken:{token_id}")
    token = get_object_or_404(selectors.api_tokens_for(request.user), pk=token_id)
    if request.htmx:
        return render(request, "chat/api_tokens.html#token-row", {"token": token})
    return redirect("chat:api-tokens")


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
        form = PresetForm(request.POST)
        form.is_valid()
        try:
            preset = services.preset_save(
                owner=request.user,
                preset=editing,
                max_length=generation_settings.bounds().max_system_prompt,
                **form.cleaned_data,
            )
        except MessageRejected as rejected:
            error = str(rejected)
        else:
            audit.record(audit.Action.PRESET_SAVE, request=request, target=preset)
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
    audit.record(audit.Action.PRESET_DELETE, request=request, target=target)
    return redirect("chat:presets")


@limits.generates
@require_POST
async def message_post(request: HttpRequest, session_id) -> HttpResponse:
    """Send a message without the chat socket, for networks that block WebSockets.

    The same service saves it and the same task writes the answer; the page
    then follows the answer by polling the message (see static/js/chat.js).
    """
    user = await request.auser()
    session = await sync_to_async(get_object_or_404)(selectors.sessions_for(user), pk=session_id)
    text = request.POST.get("content", "")
    attachment_ids = request.POST.getlist("attachments")

    def send() -> tuple[Message, Callable[[], str]]:
        question, answer = services.message_send(
            session=session,
            content=text,
            attachment_ids=attachment_ids,
            model_name=engine_worker().state.model,
        )
        return answer, lambda: stream_html.messages_added(question, answer)

    try:
        html = await answers.begin_answer(user, session.pk, send)
    except (LimitExceeded, MessageRejected) as error:
        return HttpResponse(stream_html.composer_alert(str(error)))
    return HttpResponse(html + stream_html.composer_sent())
