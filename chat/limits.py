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


@dataclass(eq=False)
class StreamSlot:
    """One of a user's concurrent answers, held from reservation until release."""

    owner_id: int


# Lives on the server's event loop only, so it needs no lock.
_active: set[StreamSlot] = set()


def reserve_stream(user) -> StreamSlot:
    """Claim one of the user's concurrent answers; raise LimitExceeded if none is free.

    Reserve before saving or starting anything, so a refused request leaves no trace.
    """
    limit = settings.MEDSERVER.max_user_streams
    busy = sum(1 for slot in _active if slot.owner_id == user.pk)
    if busy >= limit:
        plural = "answer" if busy == 1 else "answers"
        raise LimitExceeded(
            f"You already have {busy} {plural} being written (the limit is {limit}); "
            "wait for it to finish or stop it.",
            retry_after=5,
        )
    slot = StreamSlot(user.pk)
    _active.add(slot)
    return slot


def release_stream(slot: StreamSlot) -> None:
    """Give the slot back; releasing twice is harmless."""
    _active.discard(slot)


def check_rate(request) -> None:
    """Count one request against its budget (see `rate_budget`).

    Raise LimitExceeded (with the seconds to wait) when it is spent.
    """
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


def check_socket_rate(user, address: str | None) -> None:
    """Count one WebSocket message against the same budget as HTTP requests."""
    request = HttpRequest()
    request.method = "POST"
    request.user = user
    request.META["REMOTE_ADDR"] = address or ""
    check_rate(request)
