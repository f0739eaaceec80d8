"""`medserver backup` and `medserver restore` on real data dirs, as an admin runs them."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pty
import re
import resource
import shutil
import signal
import sqlite3
import subprocess

import pytest

from lifecycle import database
from lifecycle.backup import files_to_copy
from lifecycle.manifest import Manifest
from tests.lifecycle.datadir import (
    MEDSERVER,
    archive_members,
    archive_write,
    django_run,
    environ,
    files_under,
    medserver,
    query,
)
from tests.support.server import free_port

MARK = "RESTOREMARK5"
PREVIOUS_RELEASE = ("chat", "0005_presets_reviews_provenance_dicom")  # as released at 0881a99


def chat_as_of(migration: tuple[str, str]) -> str:
    """Code saving a user's chat with the models as they were at `migration`."""
    return f"""
from django.db import connection
from django.db.migrations.loader import MigrationLoader
apps = MigrationLoader(connection).project_state({migration!r}).apps
user = apps.get_model("auth", "User").objects.create(username="ann")
chat = apps.get_model("chat", "ChatSession").objects.create(owner=user, model_name="demo")
apps.get_model("chat", "Message").objects.create(
    session=chat, role="user", content="{MARK} from before"
)
"""


ONE_CLINICIAN = f"""
from tests.lifecycle.content import clinician_data
result = clinician_data("ann", "{MARK}")
"""


@pytest.fixture(scope="module")
def clinic(tmp_path_factory):
    """A data dir with one clinician's chats and images, and a backup of it."""
    folder = tmp_path_factory.mktemp("clinic")
    data_dir = folder / "data"
    files = django_run(data_dir, ONE_CLINICIAN)["files"]
    archive = folder / "backup.tar.gz"
    done = medserver("backup", "--to", str(archive), data_dir=data_dir)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress meter in a cron job's mail
    return data_dir, files, archive


def rows(data_dir):
    return {
        "messages": query(data_dir, "SELECT id, content FROM chat_message ORDER BY id"),
        "images": query(data_dir, "SELECT id, file FROM chat_attachment ORDER BY id"),
    }


def test_backup_restores_into_a_fresh_data_dir_whole(clinic, tmp_path):
    data_dir, files, archive = clinic
    manifest = Manifest.from_json(archive_members(archive)["manifest.json"])
    assert manifest.counts["messages"] == 6 and manifest.counts["images"] == 3
    assert "0007_lifecycle_holds_and_audit_actions" in manifest.migrations["chat"]
    assert json.loads(archive_members(archive)["settings.json"])["data_dir"] == str(data_dir)

    target = tmp_path / "restored"
    done = medserver("restore", str(archive), "--data-dir", str(target))
    assert done.returncode == 0, done.stderr
    assert "every file matches" in done.stdout

    assert query(target, "PRAGMA integrity_check") == [("ok",)]
    assert rows(target) == rows(data_dir)
    assert files_under(target / "uploads") == files_under(data_dir / "uploads")
    assert (target / "secret_key").read_bytes() == (data_dir / "secret_key").read_bytes()
    # Both are on the record: the backup in the data dir's trail, the restore in the restored one.
    assert query(data_dir, "SELECT count(*) FROM chat_auditevent WHERE action = 'backup'")[0][0]
    ((detail,),) = query(target, "SELECT detail FROM chat_auditevent WHERE action = 'restore'")
    assert "backup.tar.gz" in detail and "6 messages" in detail


def test_backup_shows_its_progress_on_a_terminal(clinic, tmp_path):
    data_dir, _, _ = clinic
    terminal, its_end = pty.openpty()
    done = subprocess.run(
        [str(MEDSERVER), "backup", "--to", str(tmp_path / "b.tar.gz")],
        env=environ(data_dir),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=its_end,
        timeout=120,
    )
    os.close(its_end)
    shown = b""
    with contextlib.suppress(OSError):  # the terminal's end is closed: all is read
        while chunk := os.read(terminal, 65536):
            shown += chunk
    os.close(terminal)
    assert done.returncode == 0
    assert re.search(rb"\rBacking up: 100%  \d+ files, [\d.,]+ [KMG]?B of [\d.,]+ [KMG]?B", shown)


def test_restore_refuses_a_data_dir_with_data_unless_forced(clinic, tmp_path):
    data_dir, files, archive = clinic
    target = tmp_path / "busy"
    shutil.copytree(data_dir, target)  # a data dir of its own, with a database
    sql(target, "DELETE FROM chat_message")

    refused = medserver("restore", str(archive), "--data-dir", str(target))
    assert refused.returncode != 0
    assert "already holds MedServer data" in refused.stderr and "--force" in refused.stderr
    assert query(target, "SELECT count(*) FROM chat_message") == [(0,)]

    forced = medserver("restore", str(archive), "--data-dir", str(target), "--force")
    assert forced.returncode == 0, forced.stderr
    assert rows(target) == rows(data_dir)
    (aside,) = (target / "backups").glob("replaced-*")
    assert (aside / "medserver.sqlite3").is_file()  # what it replaced is kept, not deleted


def tampered(archive, folder, change) -> str:
    """A copy of `archive`, rewritten with `change` made to its members."""
    members = archive_members(archive)
    change(members)
    changed = folder / f"{change.__name__}.tar.gz"
    archive_write(changed, members)
    return str(changed)


def test_tampered_archive_is_refused_and_nothing_is_restored(clinic, tmp_path):
    data_dir, files, archive = clinic

    def swap_image(members):
        members[f"uploads/{files[0]}"] = b"not the scan that was backed up"

    def add_file(members):
        manifest = members.pop("manifest.json")
        members["uploads/attachments/1/extra.png"] = b"planted"
        members["manifest.json"] = manifest

    def edit_database(members):
        db = members["medserver.sqlite3"]
        members["medserver.sqlite3"] = db.replace(MARK.encode(), b"CHANGED12345")

    flipped = tmp_path / "flipped.tar.gz"
    raw = bytearray(archive.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    flipped.write_bytes(bytes(raw))
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[: len(raw) // 2])

    changed = [tampered(archive, tmp_path, f) for f in (swap_image, add_file, edit_database)]
    for variant in (*changed, str(flipped), str(cut)):
        target = tmp_path / "target"
        done = medserver("restore", variant, "--data-dir", str(target))
        assert done.returncode != 0, variant
        assert "medserver: error:" in done.stderr and "unchanged" in done.stderr, done.stderr
        assert not (target / "medserver.sqlite3").exists(), variant
        assert not list(target.iterdir()), variant


def test_encrypted_backup_restores_only_with_its_passphrase(clinic, tmp_path):
    data_dir, files, _ = clinic
    (tmp_path / "pass").write_text("correct horse battery staple\n")
    (tmp_path / "wrong").write_text("incorrect horse battery staple\n")
    archive = tmp_path / "backup.tar.gz.enc"
    made = medserver(
        "backup",
        "--to",
        str(archive),
        "--passphrase-file",
        str(tmp_path / "pass"),
        data_dir=data_dir,
    )
    assert made.returncode == 0, made.stderr
    raw = archive.read_bytes()
    assert MARK.encode() not in raw and b"SQLite format 3" not in raw

    target = tmp_path / "target"
    without = medserver("restore", str(archive), "--data-dir", str(target))
    assert without.returncode != 0 and "passphrase" in without.stderr
    wrong = medserver(
        "restore",
        str(archive),
        "--data-dir",
        str(target),
        "--passphrase-file",
        str(tmp_path / "wrong"),
    )
    assert wrong.returncode != 0 and "wrong passphrase" in wrong.stderr
    flipped = tmp_path / "flipped.enc"
    flipped.write_bytes(raw[:-40] + bytes([raw[-40] ^ 1]) + raw[-39:])
    changed = medserver(
        "restore",
        str(flipped),
        "--data-dir",
        str(target),
        "--passphrase-file",
        str(tmp_path / "pass"),
    )
    assert changed.returncode != 0 and "damaged" in changed.stderr
    assert not (target / "medserver.sqlite3").exists()

    right = medserver(
        "restore",
        str(archive),
        "--data-dir",
        str(target),
        "--passphrase-file",
        str(tmp_path / "pass"),
    )
    assert right.returncode == 0, right.stderr
    assert rows(target) == rows(data_dir)


def test_backup_refuses_an_existing_target_and_a_full_disk(clinic, tmp_path):
    data_dir, files, archive = clinic
    before = archive.read_bytes()
    exists = medserver("backup", "--to", str(archive), data_dir=data_dir)
    assert exists.returncode != 0
    assert "already exists" in exists.stderr
    assert archive.read_bytes() == before

    # A disk that fills up halfway through the archive: the database's copy fits, the
    # images not. (A file size limit stands in for the disk: the same write error.)
    room = (data_dir / "medserver.sqlite3").stat().st_size + 64 * 1024
    assert archive.stat().st_size > room

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (room, room))

    full = tmp_path / "full.tar.gz"
    done = medserver("backup", "--to", str(full), data_dir=data_dir, preexec_fn=small_disk)
    assert done.returncode != 0
    assert done.stderr == f"medserver: error: not enough room on the disk for {full}\n"
    assert list(tmp_path.iterdir()) == []  # no half-written archive, no leftover copy


def test_backup_from_a_newer_medserver_is_refused(clinic, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(clinic[0], data_dir)
    sql(
        data_dir,
        "INSERT INTO django_migrations (app, name, applied) "
        "VALUES ('chat', '0099_from_the_future', '2030-01-01')",
    )
    archive = tmp_path / "newer.tar.gz"
    assert medserver("backup", "--to", str(archive), data_dir=data_dir).returncode == 0

    done = medserver("restore", str(archive), "--data-dir", str(tmp_path / "target"))
    assert done.returncode != 0
    assert "newer MedServer" in done.stderr and "chat.0099_from_the_future" in done.stderr
    assert not (tmp_path / "target" / "medserver.sqlite3").exists()


def test_backup_taken_by_a_newer_version_is_refused(clinic, tmp_path):
    def newer(members):
        manifest = json.loads(members["manifest.json"])
        manifest["medserver_version"] = "99.0.0"
        members["manifest.json"] = json.dumps(manifest).encode()

    done = medserver(
        "restore", tampered(clinic[2], tmp_path, newer), "--data-dir", str(tmp_path / "target")
    )
    assert done.returncode != 0
    assert "taken by MedServer 99.0.0, newer than this one" in done.stderr
    assert not (tmp_path / "target" / "medserver.sqlite3").exists()


def test_backup_of_the_previous_release_restores_and_migrates(tmp_path):
    old = tmp_path / "old"
    django_run(old, chat_as_of(PREVIOUS_RELEASE), migrate_to=PREVIOUS_RELEASE)
    applied = query(old, "SELECT name FROM django_migrations WHERE app = 'chat'")
    assert ("0007_lifecycle_holds_and_audit_actions",) not in applied
    archive = tmp_path / "previous.tar.gz"
    assert medserver("backup", "--to", str(archive), data_dir=old).returncode == 0

    target = tmp_path / "target"
    done = medserver("restore", str(archive), "--data-dir", str(target))
    assert done.returncode == 0, done.stderr
    assert query(target, "PRAGMA integrity_check") == [("ok",)]
    migrated = query(target, "SELECT name FROM django_migrations WHERE app = 'chat'")
    assert ("0007_lifecycle_holds_and_audit_actions",) in migrated
    assert query(
        target,
        "SELECT content, held_at FROM chat_message JOIN chat_chatsession s ON s.id = session_id",
    ) == [(f"{MARK} from before", None)]


def test_failed_migration_at_start_leaves_the_data_dir_as_it_was(tmp_path):
    data_dir = tmp_path / "data"
    django_run(
        data_dir,
        chat_as_of(("chat", "0004_audit_events")) + "\n"
        # The lifecycle migration fails as it is recorded, after the one before it (0005)
        # was applied and committed in the same run: without the rollback, the database
        # would be left half-migrated.
        'connection.cursor().execute("CREATE TRIGGER refuse BEFORE INSERT ON django_migrations '
        "WHEN NEW.name LIKE '%lifecycle%' BEGIN SELECT RAISE(ABORT, 'refused'); END\")\n",
        migrate_to=("chat", "0004_audit_events"),
    )
    before = _dump(data_dir)
    uploads = files_under(data_dir)

    port = str(free_port())
    done = medserver("-m", "demo", "-p", port, "-ip", "127.0.0.1", data_dir=data_dir)
    assert done.returncode != 0
    assert "migrating the database failed" in done.stderr
    assert "put back as it was" in done.stderr
    assert _dump(data_dir) == before
    (backup,) = (data_dir / "backups").glob("before-upgrade-*.tar.gz")
    assert str(backup) in done.stderr
    after = {k: v for k, v in files_under(data_dir).items() if not k.startswith("backups/")}
    assert after.keys() - {"medserver.sqlite3-wal", "medserver.sqlite3-shm"} == uploads.keys() - {
        "medserver.sqlite3-wal",
        "medserver.sqlite3-shm",
    }


def sql(data_dir, statement: str) -> None:
    with contextlib.closing(sqlite3.connect(data_dir / "medserver.sqlite3")) as db:
        db.execute(statement)
        db.commit()


def _dump(data_dir) -> str:
    with sqlite3.connect(data_dir / "medserver.sqlite3") as db:
        lines = "\n".join(db.iterdump())
    return hashlib.sha256(lines.encode()).hexdigest()


def test_an_image_deleted_after_the_snapshot_leaves_no_row_without_its_file(clinic, tmp_path):
    """The race a live backup meets: the database is copied, then a chat with images is
    deleted (rows, then files) before the files are copied."""
    live = tmp_path / "data"
    shutil.copytree(clinic[0], live)
    copy = tmp_path / "snapshot.sqlite3"
    database.snapshot(live / "medserver.sqlite3", copy)
    deleted = django_run(
        live,
        "from chat.models import Attachment, ChatSession\n"
        "from chat.services.sessions import session_delete\n"
        "session = ChatSession.objects.filter(messages__attachments__isnull=False).first()\n"
        "result = sorted(set(Attachment.objects.filter(message__session=session)"
        ".values_list('file', flat=True)))\n"
        "session_delete(session=session)\n",
    )
    assert deleted and not any((live / "uploads" / name).exists() for name in deleted)
    # And one file lost from the data dir earlier, its row still saved.
    (lost,) = set(database.attachment_files(copy)) - set(deleted)
    (live / "uploads" / lost).unlink()

    files, missing = files_to_copy(copy, live / "medserver.sqlite3", live / "uploads")

    assert missing == [lost]
    assert set(files) == set(database.attachment_files(copy)) - {lost}
    assert not set(deleted) & set(database.attachment_files(copy))  # their rows left out too
