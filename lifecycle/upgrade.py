"""Migrating at start, safely: a backup first, and the database as it was if it fails.

Django runs each migration in its own transaction, so a run that fails halfway
leaves the ones before it applied. Before migrating an existing database,
MedServer writes a backup archive (the last `keep` are kept) and a plain copy
of the database; when a migration fails, the copy is put back through SQLite's
backup API and the server does not start.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

from django.core.management import call_command
from django.db import connections
from django.db.migrations.executor import MigrationExecutor

from audit.models import AuditEvent
from lifecycle import audit, database
from lifecycle.backup import SUFFIX, backup_create
from lifecycle.errors import LifecycleError
from lifecycle.restore import BACKUPS_FOLDER

log = logging.getLogger(__name__)
PREFIX = "before-upgrade-"


def pending_migrations() -> tuple[list[str], bool]:
    """The migrations not yet applied, and whether the database has any applied
    (False: a new installation)."""
    executor = MigrationExecutor(connections["default"])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    names = [f"{migration.app_label}.{migration.name}" for migration, _ in plan]
    return names, bool(executor.loader.applied_migrations)


def migrate_with_backup(data_dir: Path, *, keep: int) -> Path | None:
    """Apply pending migrations; before changing an existing database, back it up.

    Return the backup written (None when there was nothing to migrate, the
    database is new, or `keep` is 0). Raise LifecycleError when the backup
    cannot be written (nothing is migrated then) or a migration fails (the
    database is put back as it was).
    """
    pending, existing = pending_migrations()
    if not pending:
        return None
    if not existing:
        call_command("migrate", interactive=False, verbosity=0)
        return None
    source = data_dir / database.DATABASE_NAME
    folder = data_dir / BACKUPS_FOLDER
    folder.mkdir(mode=0o700, exist_ok=True)
    connections.close_all()
    archive = None
    if keep > 0:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        try:
            archive = backup_create(
                data_dir, folder / f"{PREFIX}{stamp}{SUFFIX}", progress=False
            ).path
        except LifecycleError as error:
            raise LifecycleError(
                f"could not back up the data before migrating it ({error}); nothing was "
                "changed. Free some room, or start with --upgrade-backups 0 to migrate anyway"
            ) from None
        log.info("Backed up before %d migrations: %s", len(pending), archive)
        _prune(folder, keep)
    rollback = folder / ".before-migrating.sqlite3"
    database.snapshot(source, rollback)
    try:
        call_command("migrate", interactive=False, verbosity=0)
    except Exception as error:
        connections.close_all()
        database.snapshot(rollback, source, journal_mode="WAL")
        where = f"; a backup of it is in {archive}" if archive else ""
        raise LifecycleError(
            f"migrating the database failed ({error}); it was put back as it was{where}"
        ) from error
    finally:
        rollback.unlink(missing_ok=True)
    if archive is not None:
        audit.record(
            AuditEvent.Action.BACKUP,
            actor="MedServer (at start)",
            detail=f"to {archive.name}, before {len(pending)} migrations",
        )
    return archive


def _prune(folder: Path, keep: int) -> None:
    """Keep the newest `keep` automatic backups (their names sort by time)."""
    made = sorted(folder.glob(f"{PREFIX}*{SUFFIX}"))
    for old in made[:-keep]:
        old.unlink(missing_ok=True)
        log.info("Removed an older automatic backup: %s", old)
