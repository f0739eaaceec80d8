"""Rates as --rate-limit and a service token's limit take them: "20/minute", "5/10s"."""

from __future__ import annotations

import re

_RATE_RE = re.compile(r"^(\d+)/(\d*)(s|sec|second|m|min|minute|h|hour|d|day)s?$")


def parse_rate(text: str) -> str:
    """Return a django-ratelimit rate such as '20/minute' (count / period)."""
    text = text.strip().lower()
    match = _RATE_RE.match(text)
    if not match or int(match.group(1)) < 1:
        raise ValueError(f"rate limit must look like 20/minute or 5/s, got {text!r}")
    return text


_PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def rate_period_seconds(rate: str) -> int:
    """The length in seconds of a rate's window: '20/minute' -> 60, '5/10s' -> 10."""
    match = _RATE_RE.match(rate)
    if not match:
        raise ValueError(f"not a rate: {rate!r}")
    return int(match.group(2) or 1) * _PERIOD_SECONDS[match.group(3)[0]]
