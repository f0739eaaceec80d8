"""`python manage.py audit_prune --older-than-days N`: the audit trail's retention.

The only way to delete audit events (the database refuses it otherwise, see
audit.guard); the deletion itself is recorded as an event.
"""

import datetime
import getpass

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from audit import guard

MIN_DAYS = 30  # a slip of the keyboard must not erase last week's trail


class Command(BaseCommand):
    help = "Delete audit events older than a number of days, and record that it was done."

    def add_arguments(self, parser):
        parser.add_argument("--older-than-days", type=int, required=True, metavar="N")

    def handle(self, *args, older_than_days: int, **options):
        if older_than_days < MIN_DAYS:
            raise CommandError(f"--older-than-days must be at least {MIN_DAYS}.")
        before = timezone.now() - datetime.timedelta(days=older_than_days)
        deleted = guard.prune(before=before, by=f"manage.py ({getpass.getuser()})")
        self.stdout.write(f"Deleted {deleted} audit event(s) from before {before:%Y-%m-%d}.")
