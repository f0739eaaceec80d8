"""Writes of personal API tokens: create, revoke, and noting their use."""

from __future__ import annotations

import hashlib
import secrets

from django.db.models import QuerySet
from django.utils import timezone

from api.models import ApiToken

API_TOKEN_PREFIX = "ms_"


def _token_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_token_create(
    *,
    owner,
    name: str,
    service: bool = False,
    max_streams: int | None = None,
    rate_limit: str = "",
) -> tuple[ApiToken, str]:
    """Create an API token; return it with its key, which is never stored or shown again.

    A `service` token (for a front end many people share) may carry its own
    stream cap and rate budget; a personal one always uses its owner's.
    """
    key = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        owner=owner,
        name=name.strip()[:100] or "API token",
        prefix=key[:10],
        key_hash=_token_hash(key),
        service=service,
        max_streams=max_streams if service else None,
        rate_limit=rate_limit if service else "",
    )
    token.full_clean(exclude=["owner"])
    token.save()
    return token, key


def api_token_set_key(token: ApiToken) -> str:
    """Give a token made elsewhere (the admin's form) a fresh key; return the key."""
    key = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token.prefix = key[:10]
    token.key_hash = _token_hash(key)
    return key


def api_token_revoke(*, owner, token_id: int) -> bool:
    """Revoke one of the owner's tokens; return False if there is no such active token."""
    return bool(
        ApiToken.objects.filter(owner=owner, pk=token_id, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
    )


def api_token_find(key: str) -> ApiToken | None:
    """Return the active token with this key, of an active user (noting its use), else None."""
    token = (
        ApiToken.objects.select_related("owner")
        .filter(key_hash=_token_hash(key), revoked_at__isnull=True, owner__is_active=True)
        .first()
    )
    if token is None:
        return None
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token


def api_token_user(key: str):
    """Return the active user an active token belongs to (noting its use), else None."""
    token = api_token_find(key)
    return token.owner if token is not None else None


def api_tokens_for(user) -> QuerySet[ApiToken]:
    """The user's API tokens, newest first, revoked ones included."""
    return ApiToken.objects.filter(owner=user).order_by("-created_at")
