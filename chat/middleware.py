"""Request rules of the chat app: the rate limit on the pages' form posts."""

from __future__ import annotations

import json

from django.http import HttpResponse

from chat import limits
from chat.errors import LimitExceeded

# The API counts its own requests (chat.api.auth) and answers in JSON.
_API_PREFIXES = ("/api/", "/v1/")


class RateLimitMiddleware:
    """Counts every POST of the pages (sign-in included) against --rate-limit.

    Per user and per address, the same budget as the API and the chat socket.
    A refusal is a 429 with Retry-After; for htmx, also a toast in the page.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        if request.method == "POST" and not request.path.startswith(_API_PREFIXES):
            try:
                limits.check_rate(request)
            except LimitExceeded as error:
                response = HttpResponse(str(error), status=429, content_type="text/plain")
                response["Retry-After"] = str(error.retry_after)
                toast = {"medserver:toast": {"text": str(error), "kind": "error"}}
                response["HX-Trigger"] = json.dumps(toast)
                return response
        return self.get_response(request)
