"""`medserver` started on a data dir from the previous release: it backs up before
migrating, says where, keeps the last N such backups, then runs retention's first pass."""

from __future__ import annotations

import time

from lifecycle.manifest import Manifest
from tests.lifecycle.datadir import archive_members, django_run, query
from tests.lifecycle.test_backup_restore import MARK, PREVIOUS_RELEASE, chat_as_of
from tests.support.server import start_server

AGED = """
from django.db import connection
connection.cursor().execute("UPDATE chat_chatsession SET updated_at = '2020-01-01 00:00:00'")
"""


def test_start_backs_up_before_migrating_and_runs_retention(tmp_path):
    data_dir = tmp_path / "data"
    django_run(data_dir, chat_as_of(PREVIOUS_RELEASE) + AGED, migrate_to=PREVIOUS_RELEASE)
    backups = data_dir / "backups"
    backups.mkdir()
    for old in ("before-upgrade-20250101-000000.tar.gz", "before-upgrade-20250201-000000.tar.gz"):
        (backups / old).write_bytes(b"an older backup")

    server = start_server(data_dir, "--upgrade-backups", "2", "--retention-days", "30")
    try:
        (line,) = [line for line in server.output if "before migrating" in line]
        kept = sorted(backups.glob("before-upgrade-*.tar.gz"))
        assert [path.name for path in kept][0] == "before-upgrade-20250201-000000.tar.gz"
        assert len(kept) == 2 and str(kept[1]) in line
        # The backup holds the data as it was before the migration.
        members = archive_members(kept[1])
        manifest = Manifest.from_json(members["manifest.json"])
        assert manifest.migrations["chat"][-1] == PREVIOUS_RELEASE[1]
        assert MARK.encode() in members["medserver.sqlite3"]
        ((actor, detail),) = query(
            data_dir, "SELECT username, detail FROM chat_auditevent WHERE action = 'backup'"
        )
        assert actor == "MedServer (at start)" and detail.startswith(f"to {kept[1].name}")
        # The migrated database's first retention pass deletes the chat idle since 2020.
        deadline = time.monotonic() + 30
        while query(data_dir, "SELECT count(*) FROM chat_chatsession") != [(0,)]:
            assert time.monotonic() < deadline, "retention never ran"
            time.sleep(0.2)
        ((detail,),) = query(
            data_dir, "SELECT detail FROM chat_auditevent WHERE action = 'retention'"
        )
        assert detail.startswith("1 chats idle for more than 30 days deleted, with 1 messages")
    finally:
        server.stop()
