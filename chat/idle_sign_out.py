"""Sign-out after --session-timeout minutes without activity, for pages and the chat socket.

Background polling (the status widget, /api/health) is not activity: a page
left open on a ward computer still signs out. The page warns a minute before
(`idle_seconds_left`); the socket checks every frame (`session_still_active`).
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import logout
from django.shortcuts import redirect

from chat import serving

_ACTIVITY_KEY = "medserver_last_activity"


class IdleSignOutMiddleware:
    """Signs a user out after --session-timeout minutes without activity.

    Background polling (the status widget, /api/health) is not activity:
    a page left open on a ward computer still signs out.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not serving.config().no_auth:
            now = time.time()
            last = request.session.get(_ACTIVITY_KEY, now)
            if _idle_too_long(last, now):
                logout(request)
                if request.path == settings.LOGIN_URL_PATH:
                    # Signing in again (the page's sign-in card): let it through.
                    return self.get_response(request)
                if request.htmx:
                    # The page the request came from, to come back to after signing in.
                    # The request goes on (to the sign-in redirect), so that a page's
                    # background poll does not navigate away: the page shows its own
                    # sign-in card, which keeps the draft (static/js/idle.js).
                    page = request.htmx.current_url_abs_path or "/"
                    response = self.get_response(request)
                    response["HX-Redirect"] = signed_out_url(page)
                    return response
                return redirect(signed_out_url(request.path))
            if (
                not _is_polling(request)
                and now - last >= _activity_resolution()
                or (_ACTIVITY_KEY not in request.session)
            ):
                request.session[_ACTIVITY_KEY] = now
        return self.get_response(request)


def session_still_active(session, *, note: bool = True) -> bool:
    """For the chat socket: False once the session has been idle too long; else,
    with `note`, note the message as activity (sending counts, like a page visit)."""
    if serving.config().no_auth:
        return True
    now = time.time()
    last = session.get(_ACTIVITY_KEY, now)
    if _idle_too_long(last, now):
        return False
    if not note:
        return True
    if now - last >= _activity_resolution() or _ACTIVITY_KEY not in session:
        session[_ACTIVITY_KEY] = now
        session.save()
    return True


def idle_seconds_left(session) -> int | None:
    """Seconds until the session signs out for inactivity (None: it never does).

    Reading it is not activity: the page polls it to warn before the sign-out.
    """
    if serving.config().no_auth:
        return None
    now = time.time()
    last = session.get(_ACTIVITY_KEY, now)
    return max(0, round(last + serving.config().session_timeout * 60 - now))


def note_activity(session) -> None:
    """Count now as activity, at once (the middleware notes it at most every half minute)."""
    session[_ACTIVITY_KEY] = time.time()


def signed_out_url(next_path: str) -> str:
    """The sign-in page, saying the user was signed out for inactivity, then back to `next_path`."""
    if not next_path.startswith("/") or next_path.startswith("//"):
        next_path = "/"
    return f"{settings.LOGIN_URL_PATH}?{urlencode({'next': next_path, 'reason': 'idle'})}"


def _idle_too_long(last_activity: float, now: float) -> bool:
    return now - last_activity > serving.config().session_timeout * 60


def _is_polling(request) -> bool:
    return request.path in settings.MEDSERVER_POLLING_PATHS


def _activity_resolution() -> float:
    """Seconds between two notes of activity: fewer session writes. Half a minute,
    the timeout the same to the minute; a quarter of a timeout shorter than two
    minutes, so that activity once the warning shows (half-way) is always noted."""
    return min(30.0, serving.config().session_timeout * 60 / 4)
