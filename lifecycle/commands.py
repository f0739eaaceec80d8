"""`medserver backup` and `medserver restore`: the CLI's side, in a process of their own.

Each says what it did in a few lines on stdout, and exits with one line on
stderr and status 1 when it could not (lifecycle.errors).
"""

from __future__ import annotations

import dataclasses
import getpass
import os
import shutil
import sys
from pathlib import Path

from lifecycle import restore
from lifecycle.backup import backup_create
from lifecycle.errors import LifecycleError
from medserver_site.config import ServerConfig


def backup(*, data_dir: Path, target: Path, passphrase_file: Path | None, encrypt: bool) -> None:
    """Write a backup of `data_dir` to `target` and record it in the audit trail."""
    try:
        passphrase = _passphrase(passphrase_file, ask=encrypt, confirm=True)
        made = backup_create(
            data_dir, target, passphrase=passphrase, settings=public_settings(data_dir)
        )
    except LifecycleError as error:
        sys.exit(f"medserver: error: {error}")
    lock = " (encrypted)" if passphrase is not None else ""
    print(f"Backup written to {made.path}{lock}, {made.size_bytes / 1048576:,.1f} MB.")
    print(f"It holds the data {made.manifest.describe()}.")
    if made.manifest.missing_files:
        print(
            f"Warning: {len(made.manifest.missing_files)} image file(s) were already missing "
            "from the data dir; their rows are kept (see missing_files in the manifest)."
        )
    _django_for(data_dir)
    _record("backup", f"to {made.path.name}: {_counts(made.manifest.counts)}")


def restore_archive(
    *, archive: Path, data_dir: Path, force: bool, passphrase_file: Path | None
) -> None:
    """Restore `archive` into `data_dir`, migrating it if it is older, and record it."""
    archive = archive.expanduser().absolute()
    if restore.has_data(data_dir) and not force:
        sys.exit(
            f"medserver: error: {data_dir} already holds MedServer data: restore into an empty "
            "data dir (--data-dir), or add --force to replace it (what it replaces is kept in "
            "its backups/ folder). Stop MedServer first."
        )
    try:
        passphrase = None
        if archive.is_file() and restore.is_encrypted(archive):
            passphrase = _passphrase(passphrase_file, ask=True, confirm=False)
        staging = restore.staging_folder(data_dir)
    except (LifecycleError, OSError) as error:
        sys.exit(f"medserver: error: {error}")
    try:
        manifest = restore.unpack_verified(archive, staging, passphrase=passphrase)
        print(f"Checked {archive.name}: every file matches the SHA-256 in its manifest.")
        print(f"It holds the data {manifest.describe()}.")
        _django_for(staging)
        from django.core.management import call_command
        from django.db import connections
        from django.db.migrations.loader import MigrationLoader

        known = set(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)
        restore.check_not_newer(manifest, staging, known)
        call_command("migrate", interactive=False, verbosity=0)
        _record("restore", f"from {archive.name}, {manifest.describe()}")
        connections.close_all()
        restore.settle_database(staging)
        aside = restore.put_in_place(staging, data_dir)
    except LifecycleError as error:
        sys.exit(f"medserver: error: {error}; {data_dir} is unchanged")
    except Exception as error:  # a migration that fails, a disk that fills up
        sys.exit(f"medserver: error: the restore failed ({error}); {data_dir} is unchanged")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"Restored into {data_dir}.")
    if aside is not None:
        print(f"What it replaced is in {aside} (delete it once the restore is checked).")


def public_settings(data_dir: Path) -> dict:
    """The settings MedServer reads from the environment and .env, secrets left out."""
    try:
        config = ServerConfig.from_environ()
    except ValueError:
        config = ServerConfig()
    values = {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.repr}
    values["data_dir"] = str(data_dir)
    return values


def _passphrase(path: Path | None, *, ask: bool, confirm: bool) -> str | None:
    """The passphrase from the first line of `path`, or asked for on the terminal."""
    if path is not None:
        try:
            text = Path(path).expanduser().read_text().splitlines()
        except OSError as error:
            raise LifecycleError(f"cannot read the passphrase file: {error}") from None
        if not text or not text[0].strip():
            raise LifecycleError(f"the passphrase file {path} is empty")
        return text[0].strip()
    if not ask:
        return None
    if not sys.stdin.isatty():
        raise LifecycleError("a passphrase is needed: give --passphrase-file FILE")
    phrase = getpass.getpass("Passphrase: ")
    if confirm and getpass.getpass("Passphrase again: ") != phrase:
        raise LifecycleError("the two passphrases differ")
    if len(phrase) < 8:
        raise LifecycleError("use a passphrase of at least 8 characters")
    return phrase


def _django_for(data_dir: Path) -> None:
    os.environ["MEDSERVER_DATA_DIR"] = str(data_dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = "medserver_site.settings"
    import django

    django.setup()


def _record(action: str, detail: str) -> None:
    from lifecycle import audit

    audit.record(action, detail=detail)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{value} {label.replace('_', ' ')}" for label, value in counts.items())
