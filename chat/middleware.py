"""Request rules of the chat app: the rate limit on the pages' form posts."""

from __future__ import annotations

from django.http import HttpResponse
from django_htmx.http import trigger_client_event

from chat import limits
from chat.errors import LimitExceeded

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
