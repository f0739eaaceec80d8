"""The audit trail: sign-ins, chats opened, edits, deletions, exports, API token use.

Events are appended only (audit.models.AuditEvent refuses changes) and read
in Django admin.
"""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from audit.models import AuditEvent

Action = AuditEvent.Action


def record(
    action: str,
    *,
    request=None,
    user=None,
    target: object = "",
    detail: str = "",
    address: str | None = None,
) -> None:
    """Append an event; the user and address come from `request` unless given."""
    if user is None and request is not None:
        user = getattr(request, "user", None)
    if user is not None and not user.is_authenticated:
        user = None
    AuditEvent.objects.create(
        user=user,
        username=user.get_username() if user is not None else "",
        action=action,
        target=_target(target),
        detail=detail[:300],
        address=address or _address(request),
    )


def _target(target: object) -> str:
    if isinstance(target, str):
        return target
    return f"{target._meta.model_name}:{target.pk}"


def _address(request) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs) -> None:
    record(Action.LOGIN, request=request, user=user)


@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs) -> None:
    record(Action.LOGOUT, request=request, user=user)


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs) -> None:
    # Only the name tried is kept, never the password.
    record(Action.LOGIN_FAILED, request=request, detail=str(credentials.get("username", ""))[:150])
