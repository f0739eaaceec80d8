"""Limits that protect the server from overload: concurrent answers and request rate.

Pages, the chat WebSocket and the JSON API all draw on the same budgets, so a
user cannot get around a limit by switching from one to the other.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from django.http import HttpRequest
from django_ratelimit.core import get_usage

from chat import serving
from chat.errors import LimitExceeded
from chat.rates import rate_period_seconds

# A stream slot frees as soon as an answer ends, often within a second: a
# client told to wait longer (SDKs obey Retry-After) would wait for nothing.
STREAM_RETRY_AFTER_SECONDS = 1


@dataclass(eq=False)
class StreamSlot:
    """One of a user's (or a service token's) concurrent answers, held until release."""

    owner_id: int
    token_id: int | None = None  # a service token's slots are its own, not its owner's


# Reserved on the event loop, but released from threads too: Django runs a
# streamed response's close() (which releases its slot) in a thread of its own.
_active: set[StreamSlot] = set()
_active_lock = threading.Lock()


def reserve_stream(user, token=None) -> StreamSlot:
    """Claim one of the user's concurrent answers; raise LimitExceeded if none is free.

    With a service `token` (api.models.ApiToken), the token's own cap applies
    to the token's own answers. Reserve before saving or starting anything, so
    a refused request leaves no trace.
    """
    token_id = token.pk if token is not None and token.service else None
    with _active_lock:
        return _reserve(user, token, token_id)


def _reserve(user, token, token_id: int | None) -> StreamSlot:
    if token_id is not None:
        limit = service_stream_cap(token)
        busy = sum(1 for slot in _active if slot.token_id == token_id)
        who = f"This service token ({token.name}) has"
    else:
        limit = serving.config().max_user_streams
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
    return token.max_streams or max(SERVICE_STREAMS, serving.config().max_user_streams)


def service_rate(token) -> str:
    """A service token's budget: its own, else SERVICE_RATE_FACTOR times --rate-limit."""
    if token.rate_limit:
        return token.rate_limit
    count, _, period = serving.config().rate_limit.partition("/")
    return f"{int(count) * SERVICE_RATE_FACTOR}/{period}"


def running_streams() -> int:
    """Answers being written now, for every user."""
    return len(_active)


def release_stream(slot: StreamSlot) -> None:
    """Give the slot back, from any thread; releasing twice is harmless."""
    with _active_lock:
        _active.discard(slot)


# Two budgets. Generations (a question sent, edited, regenerated or continued;
# an API completion) cost the engine real work and spend --rate-limit.
# Everything else (reviews, renames, settings, drafts, sign-ins, other API
# calls) is cheap, and has its own, larger budget: a clinician's clicks never
# leave them unable to ask. Each budget is a signed-in user's own, across their
# pages, socket and API; requests without a sign-in (the sign-in form) spend
# their address's anonymous share, apart, so that many people signing in behind
# one address (a NAT, a terminal server) never lock out those signed in there.
# A service token's requests spend the token's own budget.
GENERATION_GROUP = "medserver-generation"
OTHER_GROUP = "medserver-other"
ANONYMOUS = "-anonymous"  # the suffix of a budget's anonymous share
SERVICE_GROUP = "medserver-service"
OTHER_BUDGET_FACTOR = 10


def generates(view):
    """Mark a page view that asks the model for an answer: it spends --rate-limit."""
    view.medserver_generates = True
    return view


def is_generation(view) -> bool:
    return getattr(view, "medserver_generates", False)


def generation_rate() -> str:
    """The budget of generations: --rate-limit."""
    return serving.config().rate_limit


def other_rate() -> str:
    """The budget of every other request: ten times --rate-limit, over the same period."""
    count, _, period = serving.config().rate_limit.partition("/")
    return f"{int(count) * OTHER_BUDGET_FACTOR}/{period}"


def check_generation_rate(request) -> None:
    """Count one generation; raise LimitExceeded (saying when one is free) when spent."""
    _check(request, GENERATION_GROUP, generation_rate(), "questions")


def check_other_rate(request) -> None:
    """Count one request that writes no answer; raise LimitExceeded when spent."""
    _check(request, OTHER_GROUP, other_rate(), "clicks (reviews, renames, settings)")


def check_socket_generation_rate(user, address: str | None) -> None:
    """Count a generation asked for over the chat socket, against the same budget."""
    request = HttpRequest()
    request.method = "POST"
    request.user = user
    request.META["REMOTE_ADDR"] = address or ""
    check_generation_rate(request)


def rate_budget(request) -> tuple[str, str] | None:
    """The share of a budget a request spends, as (group suffix, django-ratelimit key):
    a signed-in user's own, else its address's anonymous one. None for an anonymous
    request without an address (a Unix socket, a test)."""
    if request.user.is_authenticated:
        return "", "user"
    if request.META.get("REMOTE_ADDR"):
        return ANONYMOUS, "ip"
    return None


def _check(request, group: str, rate: str, what: str) -> None:
    token = getattr(request, "api_token", None)
    if token is not None and token.service:
        # Its front end's many users share one address and one key: neither the
        # address's nor the owner's budget applies, the token's own does.
        key = f"service-token:{token.pk}"
        rate = service_rate(token)
        _spend(request, SERVICE_GROUP, lambda group, r: key, rate, f"requests on {token.name!r}")
        return
    budget = rate_budget(request)
    if budget is not None:
        suffix, key = budget
        _spend(request, group + suffix, key, rate, what)


def _spend(request, group: str, key, rate: str, what: str) -> None:
    """Count one request against `group`'s share `key`; raise LimitExceeded naming
    the budget and the seconds until it frees."""
    usage = get_usage(request, group=group, key=key, rate=rate, increment=True)
    if usage and usage["should_limit"]:
        wait = max(1, int(usage["time_left"]))
        raise LimitExceeded(
            f"Too many {what}: the limit is {_per(rate)}. The next is allowed in {wait} s.",
            retry_after=wait,
        )


def _per(rate: str) -> str:
    """'20/minute' -> '20 a minute'; '5/10s' -> '5 per 10 s'."""
    return (
        f"{rate.split('/')[0]} per {rate_period_seconds(rate)} s".replace(" per 60 s", " a minute")
        .replace(" per 3600 s", " an hour")
        .replace(" per 1 s", " a second")
    )
