"""Chat sockets follow the sign-in that opened them.

A socket is opened by a signed-in page and may stay open for hours; the
sign-in can end meanwhile: the user signs out, the session expires or is
flushed, an admin disables the account or changes its password. The consumer
re-checks at every frame (`socket_signed_in`), and a change to an account
makes that user's open sockets re-check at once: every save or deletion of a
user, and every sign-out, is sent to the user's group on the channel layer,
which each of their sockets joins.
"""

from __future__ import annotations

from importlib import import_module
from types import SimpleNamespace

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib import auth
from django.contrib.auth.signals import user_logged_out
from django.contrib.sessions.backends.base import UpdateError
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from chat.idle_sign_out import session_still_active

ACCOUNT_CHANGED = "account.changed"
SIGNED_OUT = "account.signed_out"


def user_group(user_id: int) -> str:
    """The channel-layer group every open chat socket of the user joins."""
    return f"user.{user_id}"


def socket_signed_in(session_key: str | None, user_id: int, *, activity: bool = False) -> bool:
    """Whether the session `session_key` still signs in the user `user_id`.

    False once the session is gone (signed out, flushed, expired), idle past
    --session-timeout, or no longer valid for the account (disabled, deleted,
    password changed: Django's session auth hash). With `activity`, a session
    still valid is noted as active, as a page visit is. Reads the session from
    the database afresh: the one the socket opened with is a snapshot.
    """
    if not session_key:
        return False
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    # Django's own check of a request's session: backend, is_active, auth hash.
    user = auth.get_user(SimpleNamespace(session=store))
    if not user.is_authenticated or user.pk != user_id:
        return False
    if not activity:
        return session_still_active(store, note=False)
    try:
        return session_still_active(store)
    except UpdateError:  # signed out between the read and the write
        return False


def _notify(user_id: int, event: dict) -> None:
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(user_group(user_id), event)


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def _account_saved(sender, instance, update_fields=None, **kwargs) -> None:
    # A sign-in only stamps last_login: nothing a socket needs to re-check.
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return
    transaction.on_commit(lambda: _notify(instance.pk, {"type": ACCOUNT_CHANGED}))


@receiver(post_delete, sender=settings.AUTH_USER_MODEL)
def _account_deleted(sender, instance, **kwargs) -> None:
    user_id = instance.pk
    transaction.on_commit(lambda: _notify(user_id, {"type": ACCOUNT_CHANGED}))


@receiver(user_logged_out)
def _signed_out(sender, request, user, **kwargs) -> None:
    # Sent before the session is flushed: the sockets of that session close
    # without a database read (the others of the user stay open).
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if user is not None and session_key:
        _notify(user.pk, {"type": SIGNED_OUT, "session_key": session_key})
