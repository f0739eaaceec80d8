"""The data dir's SQLite database read and copied as files, without Django.

Copying the file of a database in WAL mode while MedServer writes to it can give
a copy without its latest writes, or a torn one; SQLite's online backup API
copies a consistent state while the server goes on writing.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

DATABASE_NAME = "medserver.sqlite3"
UPLOADS_NAME = "uploads"
SECRET_KEY_NAME = "secret_key"

# What the manifest counts, table by table.
COUNTED_TABLES = {
    "users": "auth_user",
    "chats": "chat_chatsession",
    "messages": "chat_message",
    "images": "chat_attachment",
    "reviews": "chat_answerreview",
    "presets": "chat_preset",
    "api_tokens": "chat_apitoken",
    "audit_events": "chat_auditevent",
}


def connect(path: Path, *, timeout: float = 30) -> sqlite3.Connection:
    """A plain connection to the database at `path` (which must exist)."""
    if not path.is_file():
        raise FileNotFoundError(path)
    return sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=timeout)


def snapshot(source: Path, target: Path, *, journal_mode: str = "DELETE") -> None:
    """Copy the database at `source` into `target` as one consistent state.

    `target` is overwritten, and left in `journal_mode`: DELETE (the default)
    makes it one whole file, to be archived or moved without a -wal beside it.
    Writers of `source` are not blocked for long: the copy is one step of
    SQLite's online backup, inside one read transaction.
    """
    with closing(connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
        dst.execute(f"PRAGMA journal_mode={journal_mode}")


def integrity_problems(path: Path) -> list[str]:
    """What `PRAGMA integrity_check` finds wrong with the database at `path` ([] if none)."""
    with closing(connect(path)) as db:
        rows = [row[0] for row in db.execute("PRAGMA integrity_check")]
    return [] if rows == ["ok"] else rows


def migration_state(path: Path) -> dict[str, list[str]]:
    """The migrations applied to the database at `path`, by app, in order applied."""
    with closing(connect(path)) as db:
        if not _has_table(db, "django_migrations"):
            return {}
        state: dict[str, list[str]] = {}
        for app, name in db.execute("SELECT app, name FROM django_migrations ORDER BY id"):
            state.setdefault(app, []).append(name)
    return state


def counts(path: Path) -> dict[str, int]:
    """How many users, chats, messages, images... the database at `path` holds."""
    with closing(connect(path)) as db:
        return {
            label: db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]  # noqa: S608
            for label, table in COUNTED_TABLES.items()
            if _has_table(db, table)
        }


def attachment_files(path: Path) -> list[str]:
    """The names (relative to the uploads folder) of the files its image rows point at,
    each once (an edited question's copy shares its original's file, the slices of a
    DICOM series the series' kept values)."""
    with closing(connect(path)) as db:
        if not _has_table(db, "chat_attachment"):
            return []
        names = {row[0] for row in db.execute("SELECT DISTINCT file FROM chat_attachment")}
        if _has_volumes(db):
            query = "SELECT DISTINCT volume FROM chat_attachment WHERE volume != ''"
            names |= {row[0] for row in db.execute(query)}
        return sorted(names)


def attachments_still_saved(path: Path, names: list[str]) -> set[str]:
    """Those of `names` that image rows of the database at `path` still point at."""
    if not names:
        return set()
    with closing(connect(path)) as db:
        marks = ",".join("?" * len(names))
        query = f"SELECT file FROM chat_attachment WHERE file IN ({marks})"  # noqa: S608
        saved = {row[0] for row in db.execute(query, names)}
        if _has_volumes(db):
            query = f"SELECT volume FROM chat_attachment WHERE volume IN ({marks})"  # noqa: S608
            saved |= {row[0] for row in db.execute(query, names)}
        return saved


def attachments_drop(path: Path, names: list[str]) -> None:
    """Delete the image rows pointing at `names` from the database (a snapshot) at
    `path`; rows whose series' kept values are among `names` keep their image, not
    the series."""
    with closing(connect(path)) as db:
        db.executemany("DELETE FROM chat_attachment WHERE file = ?", [(n,) for n in names])
        if _has_volumes(db):
            query = "UPDATE chat_attachment SET volume = '' WHERE volume = ?"
            db.executemany(query, [(n,) for n in names])
        db.commit()


def _has_volumes(db: sqlite3.Connection) -> bool:
    """Whether image rows have kept series (Attachment.volume; older databases do not)."""
    return any(row[1] == "volume" for row in db.execute("PRAGMA table_info(chat_attachment)"))


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    return db.execute(query, (name,)).fetchone() is not None
