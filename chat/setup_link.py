"""The one-time link that lets the first visitor create the administrator.

The token is signed with the installation's secret key and works only while
no account exists: once the administrator is created, every link is dead.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.core import signing
from django.db import transaction

_SALT = "medserver.first-admin-setup"
MAX_AGE_SECONDS = 7 * 24 * 3600


def setup_token() -> str:
    return signing.dumps("first-admin", salt=_SALT)


def setup_token_valid(token: str) -> bool:
    try:
        return signing.loads(token, salt=_SALT, max_age=MAX_AGE_SECONDS) == "first-admin"
    except signing.BadSignature:
        return False


def setup_path() -> str:
    return f"/setup/{setup_token()}/"


def first_admin_create(form) -> User | None:
    """Save the administrator from a valid FirstAdminForm, or return None when
    an account exists already.

    The check and the insert are one IMMEDIATE transaction (settings.DATABASES):
    SQLite takes its write lock at BEGIN, so of concurrent posts of the link
    exactly one finds no account and creates the administrator.
    """
    with transaction.atomic():
        if User.objects.exists():
            return None
        return form.save()
