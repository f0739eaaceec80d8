"""Site-wide request rules: the loopback-only no-auth mode, the Content-Security-Policy,
no caching of patient content, and compression. (Sign-out after inactivity:
chat.idle_sign_out.)"""

from __future__ import annotations

from django.contrib.auth import get_user_model, login
from django.middleware import gzip

from chat import serving

LOCAL_USER = "local"


class LocalUserMiddleware:
    """With --no-auth (loopback only), every request is the one local user."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        if serving.config().no_auth and not request.user.is_authenticated:
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
