"""Lockout of an account after repeated failed sign-ins.

Counted per account (the name tried, casefolded), not per address: a clinic
behind one NAT address shares that address, and a password guesser can change
theirs. After FAILURES_BEFORE_LOCK failures within LOCK_SECONDS of the first,
the account's sign-in is refused, even with the right password, until
LOCK_SECONDS after that first failure; a successful sign-in clears the count.
The counts live in Django's default cache, in the server's memory (it is one
process); a restart forgets them.
"""

from __future__ import annotations

import hashlib

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.dispatch import receiver

FAILURES_BEFORE_LOCK = 10
LOCK_SECONDS = 15 * 60
LOCKED = (
    "This account is locked for a while after repeated failed sign-ins; "
    "try again in 15 minutes or ask the administrator."
)


def _key(username: str) -> str:
    digest = hashlib.sha256(username.strip().casefold().encode()).hexdigest()
    return f"medserver:sign-in-failures:{digest}"


def is_locked(username: str) -> bool:
    """Whether sign-in to the account `username` is refused for now."""
    return cache.get(_key(username), 0) >= FAILURES_BEFORE_LOCK


def failure_record(username: str) -> None:
    key = _key(username)
    cache.add(key, 0, LOCK_SECONDS)  # the window starts at the first failure
    try:
        cache.incr(key)
    except ValueError:  # expired between the two calls
        cache.set(key, 1, LOCK_SECONDS)


@receiver(user_login_failed)
def _failed(sender, credentials, request=None, **kwargs) -> None:
    username = credentials.get("username")
    if isinstance(username, str) and username:
        failure_record(username)


@receiver(user_logged_in)
def _signed_in(sender, request, user, **kwargs) -> None:
    cache.delete(_key(user.get_username()))
