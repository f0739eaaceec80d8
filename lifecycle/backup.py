"""`medserver backup`: a data dir into one archive, consistent, while the server runs.

Consistency between the database and the uploads comes from their order: an
image's file is written before its row, so every row in the database's snapshot
has its file on disk when the snapshot is taken. The files are copied after the
snapshot; one deleted in between (its chat deleted meanwhile) has its row taken
out of the snapshot too, so the archive holds no row without its file.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import logging
import os
import shutil
import sqlite3
import tarfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

from lifecycle import crypto, database
from lifecycle.errors import BackupError
from lifecycle.manifest import MANIFEST_NAME, SETTINGS_NAME, Manifest
from lifecycle.progress import Progress
from medserver_site import __version__

log = logging.getLogger(__name__)

_NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
SUFFIX = ".tar.gz"
ENCRYPTED_SUFFIX = ".tar.gz.enc"


@dataclass(frozen=True)
class Backup:
    path: Path
    manifest: Manifest
    size_bytes: int


def backup_create(
    data_dir: Path,
    target: Path,
    *,
    passphrase: str | None = None,
    settings: dict | None = None,
    progress: bool = True,
) -> Backup:
    """Write a backup of `data_dir` to the new file `target`; return what it holds.

    `settings` (the server's settings, secrets left out) is kept beside the data.
    Raise BackupError when `target` exists, its folder does not, the disk is
    full or `data_dir` holds no database; nothing is left at `target` then.
    """
    target = target.expanduser().absolute()
    data_dir = Path(data_dir)
    source = data_dir / database.DATABASE_NAME
    if target.exists():
        raise BackupError(f"{target} already exists; a backup never overwrites a file")
    if not target.parent.is_dir():
        raise BackupError(f"folder {target.parent} does not exist")
    if not source.is_file():
        raise BackupError(f"no MedServer database in {data_dir}")
    partial = target.with_name(f".{target.name}.partial")
    copy = target.with_name(f".{target.name}.sqlite3")
    try:
        _check_room(data_dir, target.parent)
        database.snapshot(source, copy)
        problems = database.integrity_problems(copy)
        if problems:
            raise BackupError(f"the database in {data_dir} is damaged: {problems[0]}")
        uploads = data_dir / database.UPLOADS_NAME
        files, missing = files_to_copy(copy, source, uploads)
        total = copy.stat().st_size + sum(_size_of(uploads / name) for name in files)
        meter = Progress("Backing up", total_bytes=total) if progress else None
        with open(partial, "xb") as raw:
            manifest = _write_archive(
                raw, passphrase, data_dir, copy, files, missing, settings, meter
            )
            raw.flush()
            os.fsync(raw.fileno())
        if meter:
            meter.finish()
        os.rename(partial, target)
    except sqlite3.OperationalError as error:
        if "full" in str(error):  # SQLite's words for ENOSPC while copying the database
            raise BackupError(f"not enough room on the disk for {target}") from None
        # SQLite does not say which write error it met (a file size limit, a failing disk).
        raise BackupError(f"cannot copy the database next to {target}: {error}") from None
    except OSError as error:
        if error.errno in _NO_ROOM:
            raise BackupError(f"not enough room on the disk for {target}") from None
        raise BackupError(f"cannot write {target}: {error.strerror or error}") from None
    finally:
        partial.unlink(missing_ok=True)
        copy.unlink(missing_ok=True)
    return Backup(target, manifest, target.stat().st_size)


def _check_room(data_dir: Path, folder: Path) -> None:
    """Refuse at once when the folder's disk cannot hold even the data compressed a
    little, instead of failing at the end of a long copy."""
    db = data_dir / database.DATABASE_NAME
    size = db.stat().st_size + _size_of(db.with_name(db.name + "-wal"))
    size += sum(_size_of(path) for path in (data_dir / database.UPLOADS_NAME).rglob("*"))
    free = shutil.disk_usage(folder).free
    # Images are stored compressed already; the database shrinks, so 3/4 is a floor.
    if size * 3 // 4 > free:
        raise BackupError(
            f"not enough room on the disk for a backup in {folder}: "
            f"about {size // 1048576:,} MB needed, {free // 1048576:,} MB free"
        )


def _size_of(path: Path) -> int:
    try:
        return path.stat().st_size if path.is_file() else 0
    except OSError:
        return 0


def files_to_copy(copy: Path, live: Path, uploads: Path) -> tuple[list[str], list[str]]:
    """The image files to archive, and those already missing from the data dir.

    A file gone since the snapshot belongs to a row deleted since (with its
    chat or message): that row is taken out of the snapshot too. A file gone
    although its row is still saved was lost from the data dir before; the
    row is kept, as it is, and named in the manifest.
    """
    wanted = database.attachment_files(copy)
    gone = [name for name in wanted if not (uploads / name).is_file()]
    return [name for name in wanted if name not in gone], _settle_gone(copy, live, gone)


def _settle_gone(copy: Path, live: Path, gone: list[str]) -> list[str]:
    """Drop from the snapshot `copy` the rows of the files `gone` that the `live`
    database has deleted too; return those it still has (files lost before)."""
    still_saved = database.attachments_still_saved(live, gone)
    deleted_since = [name for name in gone if name not in still_saved]
    if deleted_since:
        database.attachments_drop(copy, deleted_since)
    for name in sorted(still_saved):
        log.warning("image file %s is missing from the data dir; its row is kept", name)
    return sorted(still_saved)


def _write_archive(
    raw: BinaryIO,
    passphrase: str | None,
    data_dir: Path,
    copy: Path,
    files: list[str],
    missing: list[str],
    settings: dict | None,
    meter: Progress | None,
) -> Manifest:
    """Write the archive; return its manifest.

    The images go first and the database after them: a chat deleted while its
    images are copied has its rows taken out of the database's copy before the
    copy is archived.
    """
    out = crypto.EncryptingWriter(raw, passphrase) if passphrase is not None else raw
    checksums: dict[str, dict] = {}
    with tarfile.open(fileobj=out, mode="w|gz", format=tarfile.PAX_FORMAT) as tar:
        key = data_dir / database.SECRET_KEY_NAME
        if key.is_file():
            _add_file(tar, key, database.SECRET_KEY_NAME, checksums, None)
        vanished = []
        for name in files:
            path = data_dir / database.UPLOADS_NAME / name
            try:
                _add_file(tar, path, f"{database.UPLOADS_NAME}/{name}", checksums, meter)
            except FileNotFoundError:
                vanished.append(name)
        missing = sorted(missing + _settle_gone(copy, data_dir / database.DATABASE_NAME, vanished))
        manifest = Manifest(
            medserver_version=__version__,
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            migrations=database.migration_state(copy),
            counts=database.counts(copy),
            files=checksums,  # the database's and settings' sums join it below
            missing_files=missing,
            encrypted=passphrase is not None,
        )
        _add_file(tar, copy, database.DATABASE_NAME, checksums, meter)
        settings_json = json.dumps(settings or {}, indent=2, sort_keys=True, default=str)
        _add_bytes(tar, SETTINGS_NAME, settings_json.encode(), checksums)
        _add_bytes(tar, MANIFEST_NAME, manifest.to_json(), None)
    if isinstance(out, crypto.EncryptingWriter):
        out.close()
    return manifest


def _add_file(tar, path: Path, name: str, checksums: dict, meter: Progress | None) -> None:
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = 0o600
        info.mtime = int(os.fstat(handle.fileno()).st_mtime)
        reader = _HashingReader(handle)
        tar.addfile(info, reader)
    checksums[name] = {"sha256": reader.hash.hexdigest(), "size": size}
    if meter:
        meter.advance(size)


def _add_bytes(tar, name: str, data: bytes, checksums: dict | None) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))
    if checksums is not None:
        checksums[name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


class _HashingReader:
    """A file that hashes what is read from it, so each file is read once."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.hash.update(data)
        return data
