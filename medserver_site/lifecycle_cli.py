"""`medserver backup` and `medserver restore`: the CLI's side, in a process of their own.

Each says what it did in a few lines on stdout, and exits with one line on
stderr and status 1 when it could not (lifecycle.errors).
"""

from __future__ import annotations

import argparse
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

COMMANDS = ("backup", "restore")


def add_commands(commands, *, data_dir_type, formatter) -> None:
    """Add `backup` and `restore` to the CLI's subcommands."""
    # SUPPRESS: without its own --data-dir, a command keeps the one given before it.
    data_dir = {
        "type": data_dir_type,
        "default": argparse.SUPPRESS,
        "metavar": "DIR",
        "help": "the data dir (default: as when serving: $MEDSERVER_DATA_DIR or ~/.medserver)",
    }
    passphrase_file = {
        "type": Path,
        "default": None,
        "metavar": "FILE",
        "help": "read the passphrase from the first line of FILE (for scheduled backups)",
    }
    backup = commands.add_parser(
        "backup",
        prog="medserver backup",
        help="write the database, uploads and secret key to one archive, then exit",
        description="Back up a data dir into one archive, while MedServer serves: the "
        "database through SQLite's online backup API, every uploaded image, the secret key, "
        "the settings, and a manifest with each file's SHA-256.",
        epilog="Example: medserver backup --to /mnt/nas/medserver-2026-12-01.tar.gz",
        formatter_class=formatter,
    )
    backup.add_argument("--to", required=True, type=Path, metavar="FILE", help="a new file")
    backup.add_argument("--data-dir", **data_dir)
    lock = backup.add_mutually_exclusive_group()
    lock.add_argument(
        "--encrypt", action="store_true", help="encrypt with a passphrase asked for here"
    )
    lock.add_argument("--passphrase-file", **passphrase_file)
    restore = commands.add_parser(
        "restore",
        prog="medserver restore",
        help="put a backup back into a data dir, then exit",
        description="Restore a backup into an empty data dir (or, with --force, over the "
        "data there). Every file is checked against the manifest first; a backup from an "
        "older MedServer is migrated, one from a newer MedServer refused. Stop MedServer "
        "before restoring into the data dir it serves.",
        epilog="Example: medserver restore /mnt/nas/medserver-2026-12-01.tar.gz",
        formatter_class=formatter,
    )
    restore.add_argument("archive", type=Path, metavar="FILE", help="the backup to restore")
    restore.add_argument("--data-dir", **data_dir)
    restore.add_argument(
        "--force",
        action="store_true",
        help="replace the data dir's database, uploads and key (kept in its backups/ folder)",
    )
    restore.add_argument("--passphrase-file", **passphrase_file)


def run(args: argparse.Namespace) -> None:
    """Run the `backup` or `restore` the parsed `args` ask for."""
    if args.command == "backup":
        backup(
            data_dir=args.data_dir,
            target=args.to,
            passphrase_file=args.passphrase_file,
            encrypt=args.encrypt,
        )
    else:
        restore_archive(
            archive=args.archive,
            data_dir=args.data_dir,
            force=args.force,
            passphrase_file=args.passphrase_file,
        )


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
