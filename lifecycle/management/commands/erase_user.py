"""manage.py erase_user USER: delete everything of a user, files included."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from lifecycle import audit
from lifecycle.management.commands.export_user import _user
from lifecycle.user_erase import database_compact, user_erase

_LOG_IN_USE = (
    "The database's write-ahead log is in use (MedServer is running): stop it, then run "
    "`manage.py erase_user {stub}` to empty it."
)


class Command(BaseCommand):
    help = (
        "Delete every chat, message, image, preset, review, API token and sign-in of a user, "
        "and the automatic backups in the data dir that hold them; the account stays as an "
        "inactive stub, and the audit trail records the erasure without the content."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--yes", action="store_true", help="do not ask for confirmation (for scripts)"
        )

    def handle(self, *args, username: str, yes: bool, **options) -> None:
        user = _user(username)
        if user.username == f"erased-{user.pk}" and not user.is_active:
            # Erased already: only what a running server kept from being done is left.
            emptied = database_compact()
            self.stdout.write(f"{username} was erased already; the database was compacted.")
            if not emptied:
                self.stdout.write(_LOG_IN_USE.format(stub=username))
            return
        if not yes:
            answer = input(f"Erase everything of {username}? This cannot be undone. [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                raise CommandError("nothing erased")
        erased = user_erase(user=user, actor=audit.operator_name())
        self.stdout.write(f"Erased {username}: {erased.describe()}.")
        for path in erased.backups_removed:
            self.stdout.write(f"Removed the automatic backup {path}, which held their data.")
        if not erased.log_emptied:
            self.stdout.write(_LOG_IN_USE.format(stub=user.username))
        self.stdout.write(
            "Backups written elsewhere (medserver backup --to) still hold their data until "
            "they are deleted."
        )
