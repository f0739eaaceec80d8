"""Request rules of the chat app: the rate limit on the pages' form posts, and what a
page is shown when its request is refused."""

from __future__ import annotations

from django.http import HttpResponse
from django_htmx.http import reswap, trigger_client_event

from chat import limits, stream_html
from chat.errors import LimitExceeded, Rejected

# The API counts its own requests (api.auth) and answers in JSON.
_API_PREFIXES = ("/api/", "/v1/")


class RateLimitMiddleware:
    """Counts every POST of the pages (sign-in included) against a budget.

    Per user and per address, the same budgets as the API and the chat socket:
    a view marked `limits.generates` (it asks the model for an answer) spends
    --rate-limit; any other POST spends the larger budget of other requests.
    A refusal is a 429 with Retry-After; for htmx, also a toast in the page.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.method != "POST" or request.path.startswith(_API_PREFIXES):
            return None
        try:
            if limits.is_generation(view_func):
                limits.check_generation_rate(request)
            else:
                limits.check_other_rate(request)
        except LimitExceeded as error:
            response = HttpResponse(str(error), status=429, content_type="text/plain")
            response["Retry-After"] = str(error.retry_after)
            # For htmx: the page shows it as a notice (static/js/chat.js listens).
            trigger_client_event(response, "medserver:toast", {"text": str(error), "kind": "error"})
            return response
        return None


class RefusalMiddleware:
    """The pages' one mapping of a refusal raised by a service (Rejected,
    LimitExceeded) that a view let through: for htmx, a notice
    and nothing else on the page changes; otherwise the reason as plain text, with
    400 (429 and Retry-After for a limit). The API maps its own (api.errors), the
    chat socket its own (chat.consumers)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, Rejected | LimitExceeded):
            return None
        if request.path.startswith(_API_PREFIXES):
            return None
        if request.htmx:
            response = HttpResponse(stream_html.toast(str(exception), kind="error"))
            reswap(response, "none")
            return response
        limited = isinstance(exception, LimitExceeded)
        response = HttpResponse(
            str(exception), status=429 if limited else 400, content_type="text/plain"
        )
        if limited:
            response["Retry-After"] = str(exception.retry_after)
        return response
