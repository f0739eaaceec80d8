"""Who is calling the API: an API token (Authorization: Bearer) or a signed-in browser."""

from __future__ import annotations

import functools
import logging

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import TooManyFilesSent
from django.http.multipartparser import MultiPartParserError
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from api import tokens as api_tokens
from api.errors import ApiError
from audit import trail
from chat import limits
from chat.errors import LimitExceeded, Rejected
from chat.serving import engine_worker
from inference.worker import EngineBusy, EngineUnavailable

log = logging.getLogger(__name__)
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


async def authenticate(request) -> None:
    """Set request.user from the token or the session; raise ApiError 401/403 otherwise.

    A token needs no CSRF token (no cookie is involved); a browser session does.
    """
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ApiError(401, "Send the API token as 'Authorization: Bearer <token>'.")
        token = await sync_to_async(api_tokens.api_token_find)(key.strip())
        if token is None:
            raise ApiError(401, "The API token is not valid or has been revoked.")
        request.user = token.owner
        request.api_token = token  # a service token brings its own limits (chat.limits)
        await sync_to_async(trail.record)(
            trail.Action.API_TOKEN_USE, request=request, target=request.path[:100]
        )
        return
    user = await request.auser()
    if not user.is_authenticated:
        raise ApiError(
            401, "Authentication required: send an API token as 'Authorization: Bearer <token>'."
        )
    if request.method not in _SAFE_METHODS:
        refusal = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
        if refusal is not None:
            raise ApiError(403, "CSRF check failed: send the X-CSRFToken header.")


def api_endpoint(
    *methods: str, public: bool = False, counted: bool = True, generates: bool = False
):
    """Make an async view a JSON API endpoint.

    It answers only `methods`, authenticates the caller (unless `public`),
    counts the request (if `counted`) against the budget of generations
    (--rate-limit) when it `generates` an answer, else against the budget of
    other requests, and turns every refusal into a JSON error. Unexpected
    errors are logged, never shown.
    """

    def decorate(view):
        @csrf_exempt  # checked in authenticate() for browser sessions only
        @login_not_required  # the API answers 401 in JSON instead of redirecting
        @functools.wraps(view)
        async def endpoint(request, *args, **kwargs):
            try:
                if request.method not in methods:
                    raise ApiError(
                        405,
                        f"Use {' or '.join(methods)} for this endpoint.",
                        headers={"Allow": ", ".join(methods)},
                    )
                if not public:
                    await authenticate(request)
                    if counted:
                        check = (
                            limits.check_generation_rate if generates else limits.check_other_rate
                        )
                        await sync_to_async(check)(request)
                return _logged_quietly_while_loading(request, await view(request, *args, **kwargs))
            except ApiError as error:
                return _logged_quietly_while_loading(request, error.response())
            except LimitExceeded as error:
                return ApiError(429, str(error), retry_after=error.retry_after).response()
            except EngineBusy as error:
                return ApiError(503, str(error), code="busy", retry_after=5).response()
            except EngineUnavailable:
                message = "The model is not available; see /api/health."
                return ApiError(503, message, retry_after=60).response()
            except Rejected as error:
                return ApiError(422, str(error)).response()
            except MultiPartParserError as error:  # read by the CSRF check or the view
                message = f"The multipart/form-data body could not be read: {error}"
                return ApiError(400, message).response()
            except TooManyFilesSent:
                return ApiError(413, "The request carries too many files.").response()
            except Exception:
                log.exception("API request to %s failed", request.path)
                return ApiError(500, "Internal error; the server log has the details.").response()

        return endpoint

    return decorate


def _logged_quietly_while_loading(request, response):
    """A 503 while the model loads is expected (health checks poll through it): log it
    at INFO instead of Django's ERROR for every 5xx."""
    if response.status_code == 503 and engine_worker().state.status == "loading":
        log.info("%s answered 503: the model is still loading", request.path)
        response._has_been_logged = True  # read by django.utils.log.log_response
    return response
