"""manage.py export_user USER: everything MedServer holds of a user, in one zip file."""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from audit.models import AuditEvent
from lifecycle import audit
from lifecycle.user_export import user_export


class Command(BaseCommand):
    help = (
        "Write every chat, message, image, review, preset, API token and audit row of a "
        "user into one zip file (for a data-protection request)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--to", type=Path, default=None, help="the zip file (default: USER-data-DATE.zip)"
        )

    def handle(self, *args, username: str, to: Path | None, **options) -> None:
        user = _user(username)
        target = to or Path(f"{username}-data-{timezone.localdate():%Y-%m-%d}.zip")
        try:
            with open(target, "xb") as handle:
                done = user_export(user=user, target=handle)
        except FileExistsError:
            raise CommandError(f"{target} already exists; choose another name (--to)") from None
        except OSError as error:
            target.unlink(missing_ok=True)
            raise CommandError(f"cannot write {target}: {error.strerror or error}") from None
        detail = (
            f"{done.chats} chats, {done.messages} messages, {done.images} images, "
            f"{done.audit_events} audit rows"
        )
        audit.record(AuditEvent.Action.USER_EXPORT, target=f"user:{user.pk}", detail=detail)
        self.stdout.write(f"Wrote the data of {username} to {target}: {detail}.")
        self.stdout.write("It holds patient data: hand it over securely, then delete it.")


def _user(username: str):
    try:
        return get_user_model().objects.get(username=username)
    except get_user_model().DoesNotExist:
        raise CommandError(f"no user named {username!r}") from None
