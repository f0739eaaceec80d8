"""The audit trail is append-only in the database: SQLite triggers refuse
UPDATE and DELETE on chat_auditevent, whatever the code path (QuerySet.update(),
.delete(), raw SQL, the sqlite3 shell).

One change is let through: `user` set to NULL when that user is deleted
(AuditEvent.user is SET_NULL; the username stays in the event). The only way
to delete events is `manage.py audit_prune`, which lifts the delete trigger
inside its own transaction and records that it did.
"""

from __future__ import annotations

import datetime

from django.db import connection, transaction

TABLE = "chat_auditevent"

NO_UPDATE = f"""
CREATE TRIGGER IF NOT EXISTS {TABLE}_no_update BEFORE UPDATE ON {TABLE}
WHEN NOT (
    NEW.user_id IS NULL AND OLD.user_id IS NOT NULL
    AND NEW.id IS OLD.id AND NEW.created_at IS OLD.created_at
    AND NEW.username IS OLD.username AND NEW.action IS OLD.action
    AND NEW.target IS OLD.target AND NEW.detail IS OLD.detail
    AND NEW.address IS OLD.address
)
BEGIN SELECT RAISE(ABORT, 'audit events are never changed'); END
"""
NO_DELETE = f"""
CREATE TRIGGER IF NOT EXISTS {TABLE}_no_delete BEFORE DELETE ON {TABLE}
BEGIN SELECT RAISE(ABORT, 'audit events are never deleted'); END
"""
CREATE = [NO_UPDATE, NO_DELETE]
DROP_NO_DELETE = f"DROP TRIGGER IF EXISTS {TABLE}_no_delete"
DROP = [f"DROP TRIGGER IF EXISTS {TABLE}_no_update", DROP_NO_DELETE]


def install() -> None:
    """Create the triggers where they are missing.

    The migration creates them; `medserver` calls this at every start, since a
    later migration that rebuilds the table (SQLite's way to alter a column)
    drops its triggers.
    """
    with connection.cursor() as cursor:
        for statement in CREATE:
            cursor.execute(statement)


def prune(*, before: datetime.datetime, by: str) -> int:
    """Delete the events older than `before` and record that `by` did; return
    how many went. The only deletion the database lets through: the delete
    trigger is lifted and put back inside one transaction."""
    from audit.models import AuditEvent

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(DROP_NO_DELETE)
        deleted, _ = AuditEvent.objects.filter(created_at__lt=before).delete()
        cursor.execute(NO_DELETE)
        AuditEvent.objects.create(
            username=by[:150],
            action=AuditEvent.Action.AUDIT_PRUNE,
            detail=f"{deleted} event(s) before {before:%Y-%m-%d %H:%M} UTC deleted",
        )
    return deleted
