"""Site-wide request rules: sign-out after inactivity, the loopback-only no-auth mode,
the Content-Security-Policy, no caching of patient content, and compression."""

from __future__ import annotations

import time
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model, login, logout
from django.middleware import gzip
from django.shortcuts import redirect

LOCAL_USER = "local"
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
        if user is not None and user.is_authenticated and not settings.MEDSERVER.no_auth:
            now = time.time()
            last = request.session.get(_ACTIVITY_KEY, now)
            if _idle_too_long(last, now):
                logout(request)
                if request.path == settings.LOGIN_URL_PATH:
                    # Signing in again (the page's sign-in card): let it through.
                    return self.get_response(request)
                if request.headers.get("HX-Request"):
                    page = urlsplit(request.headers.get("HX-Current-URL", "")).path or "/"
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
    if settings.MEDSERVER.no_auth:
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
    if settings.MEDSERVER.no_auth:
        return None
    now = time.time()
    last = session.get(_ACTIVITY_KEY, now)
    return max(0, round(last + settings.MEDSERVER.session_timeout * 60 - now))


def note_activity(session) -> None:
    """Count now as activity, at once (the middleware notes it at most every half minute)."""
    session[_ACTIVITY_KEY] = time.time()


def signed_out_url(next_path: str) -> str:
    """The sign-in page, saying the user was signed out for inactivity, then back to `next_path`."""
    if not next_path.startswith("/") or next_path.startswith("//"):
        next_path = "/"
    return f"{settings.LOGIN_URL_PATH}?{urlencode({'next': next_path, 'reason': 'idle'})}"


def _idle_too_long(last_activity: float, now: float) -> bool:
    return now - last_activity > settings.MEDSERVER.session_timeout * 60


def _activity_resolution() -> float:
    """Seconds between two notes of activity: fewer session writes. Half a minute,
    the timeout the same to the minute; a quarter of a timeout shorter than two
    minutes, so that activity once the warning shows (half-way) is always noted."""
    return min(30.0, settings.MEDSERVER.session_timeout * 60 / 4)


def _is_polling(request) -> bool:
    return request.path in settings.MEDSERVER_POLLING_PATHS


class LocalUserMiddleware:
    """With --no-auth (loopback only), every request is the one local user."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        if settings.MEDSERVER.no_auth and not request.user.is_authenticated:
            user, _ = get_user_model().objects.get_or_create(
                username=LOCAL_USER, defaults={"is_staff": True, "is_superuser": True}
            )
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return self.get_response(request)


# Everything the page needs comes from this server; no inline script, no
# other host. ('self' covers the page's own WebSocket in current browsers.)
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    """Adds the Content-Security-Policy header to every page."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response


class NoStoreMiddleware:
    """Cache-Control: no-store on everything Django answers.

    Its pages, partials, images, exports and API answers carry patient content,
    and a ward computer is shared: once a clinician signs out, nothing of theirs
    may stay in the browser's cache for the next user to find. (Static files,
    served before Django, keep their long caching.)
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response["Cache-Control"] = "no-store"
        return response


class GZipMiddleware(gzip.GZipMiddleware):
    """Django's gzip of pages (with its BREACH mitigation), for whole responses only.

    A streamed response (the API's Server-Sent Events, a download) goes as it
    is: gzip would hold each event back until it had enough bytes to compress.
    """

    def process_response(self, request, response):
        if response.streaming:
            return response
        return super().process_response(request, response)
