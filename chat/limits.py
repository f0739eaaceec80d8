"""Limits that protect the server from overload: concurrent answers and request rate.

Pages, the chat WebSocket and the JSON API all draw on the same budgets, so a
user cannot get around a limit by switching from one to the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage

from chat.errors import LimitExceeded
from medserver_site.config import rate_period_seconds


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


# Two budgets per user and per address. Generations (a question sent, edited,
# regenerated or continued; an API completion) cost the engine real work and
# spend --rate-limit. Everything else (reviews, renames, settings, drafts,
# sign-ins, other API calls) is cheap, and has its own, larger budget: a
# clinician's clicks never leave them unable to ask.
GENERATION_GROUP = "medserver-generation"
OTHER_GROUP = "medserver-other"
OTHER_BUDGET_FACTOR = 10


def generates(view):
    """Mark a page view that asks the model for an answer: it spends --rate-limit."""
    view.medserver_generates = True
    return view


def is_generation(view) -> bool:
    return getattr(view, "medserver_generates", False)


def generation_rate() -> str:
    """The budget of generations: --rate-limit."""
    return settings.MEDSERVER.rate_limit


def other_rate() -> str:
    """The budget of every other request: ten times --rate-limit, over the same period."""
    count, _, period = settings.MEDSERVER.rate_limit.partition("/")
    return f"{int(count) * OTHER_BUDGET_FACTOR}/{period}"


def check_generation_rate(request) -> None:
    """Count one generation; raise LimitExceeded (saying when one is free) when spent."""
    _spend(request, GENERATION_GROUP, generation_rate(), "questions")


def check_other_rate(request) -> None:
    """Count one request that writes no answer; raise LimitExceeded when spent."""
    _spend(request, OTHER_GROUP, other_rate(), "clicks (reviews, renames, settings)")


def check_socket_generation_rate(user, address: str | None) -> None:
    """Count a generation asked for over the chat socket, against the same budget."""
    request = HttpRequest()
    request.method = "POST"
    request.user = user
    request.META["REMOTE_ADDR"] = address or ""
    check_generation_rate(request)


def _spend(request, group: str, rate: str, what: str) -> None:
    """Count one request against the user's and the address's share of `group`.

    Raise LimitExceeded naming the budget and the seconds until it frees.
    """
    # A socket over a Unix domain (or a test) has no address: the user's budget applies.
    keys = ["ip"] if request.META.get("REMOTE_ADDR") else []
    keys += ["user"] if request.user.is_authenticated else []
    for key in keys:
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
