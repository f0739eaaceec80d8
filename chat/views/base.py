"""What the chat views share: the page's templates, finding the user's chat or message, notices."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404

from chat import selectors, stream_html
from chat.models import ChatSession, Message

PAGE = "chat/session.html"
SIDEBAR = "chat/sidebar.html"
TOPBAR = "chat/topbar.html"


def user_session(request: HttpRequest, session_id) -> ChatSession:
    try:
        return get_object_or_404(selectors.sessions_for(request.user), pk=session_id)
    except ValidationError:  # not a session id at all
        raise Http404 from None


def current_session(request: HttpRequest) -> ChatSession | None:
    """The session of the page a sidebar request comes from (its `current` value)."""
    current = request.GET.get("current") or request.POST.get("current")
    try:
        return selectors.session_for(request.user, current) if current else None
    except (ChatSession.DoesNotExist, ValidationError):
        return None


def user_message(request: HttpRequest, session_id, message_id: int) -> Message:
    session = user_session(request, session_id)
    return get_object_or_404(session.messages.select_related("session"), pk=message_id)


def with_toast(response: HttpResponse, text: str, *, kind: str = "info") -> HttpResponse:
    """Add a notice to an htmx response; htmx shows it out of band."""
    response.content += stream_html.toast(text, kind=kind).encode()
    return response
