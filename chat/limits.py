"""Limits that protect the server from overload: concurrent answers and request rate.

Pages, the chat WebSocket and the JSON API all draw on the same budgets, so a
user cannot get around a limit by switching from one to the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import is_ratelimited

from chat.errors import LimitExceeded
from medserver_site.config import rate_period_seconds

RATE_GROUP = "medserver"
ANONYMOUS_RATE_GROUP = "medserver-anonymous"


# A stream slot frees as soon as an answer ends, often within a second: a
# client told to wait longer (SDKs obey Retry-After) would wait for nothing.
STREAM_RETRY_AFTER_SECONDS = 1


@dataclass(eq=False)
class StreamSlot:
    """One of a user's (or a service token's) concurrent answers, held until release."""

    owner_id: int
    token_id: int | None = None  # a service token's slots are its own, not its owner's


# Lives on the server's event loop only, so it needs no lock.
_active: set[StreamSlot] = set()


def reserve_stream(user, token=None) -> StreamSlot:
    """Claim one of the user's concurrent answers; raise LimitExceeded if none is free.

    With a service `token` (chat.models.ApiToken), the token's own cap applies
    to the token's own answers. Reserve before saving or starting anything, so
    a refused request leaves no trace.
    """
    token_id = token.pk if token is not None and token.service else None
    if token_id is not None:
        limit = service_stream_cap(token)
        busy = sum(1 for slot in _active if slot.token_id == token_id)
        who = f"This service token ({token.name}) has"
    else:
        limit = settings.MEDSERVER.max_user_streams
        busy = sum(1 for slot in _active if slot.owner_id == user.pk and slot.token_id is None)
        who = "You already have"
    if busy >= limit:
        plural = "answer" if busy == 1 else "answers"
        raise LimitExceeded(
            f"{who} {busy} {plural} being written (the limit is {limit}); "
            "wait for it to finish or stop it.",
            retry_after=STREAM_RETRY_AFTER_SECONDS,
        )
    slot = StreamSlot(user.pk, token_id)
    _active.add(slot)
    return slot


# A front end without limits of its own still serves a clinic, not one person:
# Open WebUI alone asks for an answer, its title and follow-ups at once.
SERVICE_STREAMS = 8
SERVICE_RATE_FACTOR = 10


def service_stream_cap(token) -> int:
    """A service token's answers at once: its own cap, else SERVICE_STREAMS (at least
    what one person gets)."""
    return token.max_streams or max(SERVICE_STREAMS, settings.MEDSERVER.max_user_streams)


def service_rate(token) -> str:
    """A service token's budget: its own, else SERVICE_RATE_FACTOR times --rate-limit."""
    if token.rate_limit:
        return token.rate_limit
    count, _, period = settings.MEDSERVER.rate_limit.partition("/")
    return f"{int(count) * SERVICE_RATE_FACTOR}/{period}"


def running_streams() -> int:
    """Answers being written now, for every user."""
    return len(_active)


def release_stream(slot: StreamSlot) -> None:
    """Give the slot back; releasing twice is harmless."""
    _active.discard(slot)


def check_rate(request) -> None:
    """Count one request against its budget (see `rate_budget`).

    Raise LimitExceeded (with the seconds to wait) when it is spent.
    """
    token = getattr(request, "api_token", None)
    if token is not None and token.service:
        _check_service_rate(request, token)
        return
    rate = settings.MEDSERVER.rate_limit
    budget = rate_budget(request)
    if budget is None:
        return
    group, key = budget
    if is_ratelimited(request, group=group, key=key, rate=rate, increment=True):
        raise LimitExceeded(
            f"Too many requests: the limit is {rate}. Try again shortly.",
            retry_after=rate_period_seconds(rate),
        )


def rate_budget(request) -> tuple[str, str] | None:
    """The (group, key) of the budget a request spends: a signed-in user's own,
    else its address's anonymous one (the sign-in form). Apart, so that many
    people signing in behind one address (a NAT, a terminal server) never lock
    out those already signed in there. None for an anonymous request without an
    address (a Unix socket, a test)."""
    if request.user.is_authenticated:
        return RATE_GROUP, "user"
    if request.META.get("REMOTE_ADDR"):
        return ANONYMOUS_RATE_GROUP, "ip"
    return None


def _check_service_rate(request, token) -> None:
    """A service token's budget is its own: its front end's many users share one
    address and one key, so neither the address's nor the owner's budget applies."""
    rate = service_rate(token)
    key = f"service-token:{token.pk}"
    if is_ratelimited(
        request, group=RATE_GROUP, key=lambda group, r: key, rate=rate, increment=True
    ):
        raise LimitExceeded(
            f"Too many requests on the service token {token.name!r}: its limit is {rate}. "
            "Try again shortly.",
            retry_after=rate_period_seconds(rate),
        )


def check_socket_rate(user, address: str | None) -> None:
    """Count one WebSocket message against the same budget as HTTP requests."""
    request = HttpRequest()
    request.method = "POST"
    request.user = user
    request.META["REMOTE_ADDR"] = address or ""
    check_rate(request)
