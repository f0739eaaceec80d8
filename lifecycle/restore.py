"""`medserver restore`: a backup archive back into a data dir, checked before it is used.

The archive is unpacked into a folder beside the data (`.restoring-<pid>` in the
data dir) and every file's SHA-256 compared with the manifest before anything
else happens. The database is then migrated there, if it comes from an older
MedServer, and the restore recorded in its audit trail. Only then are the
database, uploads and secret key moved into place; what they replace (with
--force) is moved to `backups/replaced-<time>/`, not deleted.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import zlib
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

from lifecycle import crypto, database
from lifecycle.errors import LifecycleError, RestoreRefused
from lifecycle.manifest import MANIFEST_NAME, Manifest, is_safe_member, version_tuple
from lifecycle.progress import Progress
from medserver_site import __version__

BACKUPS_FOLDER = "backups"
# What a restore puts in place, and so what it replaces.
RESTORED = (database.DATABASE_NAME, database.SECRET_KEY_NAME, database.UPLOADS_NAME)
_GZIP_MAGIC = b"\x1f\x8b"
_COPY_BYTES = 1024 * 1024


def has_data(data_dir: Path) -> bool:
    """True when `data_dir` holds a database or uploaded files (a restore would replace them)."""
    uploads = data_dir / database.UPLOADS_NAME
    return (data_dir / database.DATABASE_NAME).exists() or (
        uploads.is_dir() and any(path.is_file() for path in uploads.rglob("*"))
    )


def is_encrypted(archive: Path) -> bool:
    with open(archive, "rb") as raw:
        return crypto.is_encrypted(raw.read(len(crypto.MAGIC)))


def unpack_verified(
    archive: Path, staging: Path, *, passphrase: str | None = None, progress: bool = True
) -> Manifest:
    """Unpack `archive` into the empty folder `staging` and check it whole; return its manifest.

    Raise RestoreRefused when it is not a MedServer backup, is damaged or cut
    off, was changed since it was written (a file's SHA-256, a file added or
    missing), or is encrypted and `passphrase` is missing or wrong.
    """
    if not archive.is_file():
        raise RestoreRefused(f"no such file: {archive}")
    meter = Progress("Checking", total_bytes=archive.stat().st_size) if progress else None
    with open(archive, "rb") as raw:
        head = raw.read(len(crypto.MAGIC))
        raw.seek(0)
        if crypto.is_encrypted(head):
            if passphrase is None:
                raise RestoreRefused(
                    f"{archive.name} is encrypted: give its passphrase (--passphrase-file)"
                )
            stream = crypto.DecryptingReader(raw, passphrase)
        elif head.startswith(_GZIP_MAGIC):
            stream = raw
        else:
            raise RestoreRefused(f"{archive.name} is not a MedServer backup")
        try:
            found, manifest_raw = _unpack(stream, staging, meter, raw)
        except (tarfile.TarError, EOFError, zlib.error) as error:
            raise RestoreRefused(f"{archive.name} is damaged: {error}") from None
    if meter:
        meter.finish()
    if manifest_raw is None:
        raise RestoreRefused(f"{archive.name} has no manifest: it is cut off or not a backup")
    try:
        manifest = Manifest.from_json(manifest_raw)
    except (ValueError, TypeError) as error:
        raise RestoreRefused(f"{archive.name} has an unreadable manifest: {error}") from None
    _compare(found, manifest, archive.name)
    return manifest


def _unpack(stream, staging: Path, meter: Progress | None, raw) -> tuple[dict[str, str], bytes]:
    found: dict[str, str] = {}
    manifest_raw = None
    with tarfile.open(fileobj=stream, mode="r|gz") as tar:
        for member in tar:
            if manifest_raw is not None:
                raise RestoreRefused(f"the archive goes on after its manifest ({member.name})")
            if not member.isfile() or not is_safe_member(member.name):
                raise RestoreRefused(f"the archive holds an unexpected entry: {member.name!r}")
            source = tar.extractfile(member)
            if member.name == MANIFEST_NAME:
                manifest_raw = source.read()
                continue
            digest = hashlib.sha256()
            path = staging / member.name
            if path.exists() or member.name in found:
                raise RestoreRefused(f"the archive holds {member.name} twice")
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "xb") as out:
                while chunk := source.read(_COPY_BYTES):
                    digest.update(chunk)
                    out.write(chunk)
            os.chmod(path, 0o600)
            found[member.name] = digest.hexdigest()
            if meter:
                meter.done = raw.tell()
                meter.advance(0)
    return found, manifest_raw


def _compare(found: dict[str, str], manifest: Manifest, name: str) -> None:
    listed = {path: facts["sha256"] for path, facts in manifest.files.items()}
    changed = sorted(path for path in listed.keys() & found.keys() if listed[path] != found[path])
    added = sorted(found.keys() - listed.keys())
    lost = sorted(listed.keys() - found.keys())
    for paths, what in (
        (changed, "does not match its SHA-256 in the manifest"),
        (added, "is not in the manifest"),
        (lost, "is in the manifest but not in the archive"),
    ):
        if paths:
            more = f" (and {len(paths) - 1} more)" if len(paths) > 1 else ""
            raise RestoreRefused(f"{name} was changed or damaged: {paths[0]}{more} {what}")
    if database.DATABASE_NAME not in found:
        raise RestoreRefused(f"{name} holds no database")


def check_not_newer(
    manifest: Manifest, staging: Path, known_migrations: set[tuple[str, str]]
) -> None:
    """Raise RestoreRefused for a backup from a newer MedServer than this one: a newer
    version, or a staged database migrated further than this MedServer knows how to
    (read from the database itself, not from what the manifest says of it)."""
    if version_tuple(manifest.medserver_version) > version_tuple(__version__):
        raise RestoreRefused(
            f"the backup was taken by MedServer {manifest.medserver_version}, newer than "
            f"this one ({__version__}): upgrade MedServer, then restore"
        )
    applied = database.migration_state(staging / database.DATABASE_NAME)
    unknown = [
        f"{app}.{name}"
        for app, names in applied.items()
        for name in names
        if (app, name) not in known_migrations
    ]
    if unknown:
        raise RestoreRefused(
            f"the backup's database was migrated by a newer MedServer ({unknown[0]} is unknown "
            f"to {__version__}): upgrade MedServer, then restore"
        )


def settle_database(staging: Path) -> None:
    """Fold the staged database's write-ahead log into it, so that it moves as one file."""
    path = staging / database.DATABASE_NAME
    with closing(database.connect(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    problems = database.integrity_problems(path)
    if problems:
        raise LifecycleError(f"the restored database fails its integrity check: {problems[0]}")


def put_in_place(staging: Path, data_dir: Path) -> Path | None:
    """Move the staged database, uploads and key into `data_dir`.

    What they replace goes to `backups/replaced-<time>/` in the data dir, whose
    path is returned (None when nothing was replaced).
    """
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    aside = data_dir / BACKUPS_FOLDER / f"replaced-{stamp}"
    replaced = False
    db = database.DATABASE_NAME
    for name in (*RESTORED, f"{db}-wal", f"{db}-shm"):
        if (data_dir / name).exists():
            aside.mkdir(parents=True, exist_ok=True)
            os.rename(data_dir / name, aside / name)
            replaced = True
    for name in RESTORED:
        if (staging / name).exists():
            os.rename(staging / name, data_dir / name)
    for leftover in (f"{db}-wal", f"{db}-shm"):
        (staging / leftover).unlink(missing_ok=True)
    return aside if replaced else None


def staging_folder(data_dir: Path) -> Path:
    """A fresh, empty folder inside `data_dir` to unpack into (same disk: moves are renames)."""
    staging = data_dir / f".restoring-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True, mode=0o700)
    return staging
