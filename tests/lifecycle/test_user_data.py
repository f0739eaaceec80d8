"""`manage.py export_user` and `erase_user` on a real data dir with two clinicians."""

from __future__ import annotations

import json
import shutil
import zipfile

import pytest

from tests.lifecycle.datadir import django_run, files_under, manage, query

ANN = "ANNMARK7Q"
BOB = "BOBMARK3Z"

TWO_CLINICIANS = f"""
from tests.lifecycle.content import clinician_data, review_latest_answer
result = {{"ann": clinician_data("ann", "{ANN}"), "bob": clinician_data("bob", "{BOB}")}}
review_latest_answer(reviewer="ann", owner="bob", comment="{ANN} review of bob's answer")
"""


@pytest.fixture(scope="module")
def clinic(tmp_path_factory):
    """A data dir where ann and bob each have chats, images, a preset and a token,
    and ann has reviewed one of bob's answers. Copied for each test that changes it."""
    data_dir = tmp_path_factory.mktemp("clinic") / "data"
    files = django_run(data_dir, TWO_CLINICIANS)
    return data_dir, files


def test_export_user_holds_all_of_their_data_and_none_of_another(clinic, tmp_path):
    data_dir, files = clinic
    target = tmp_path / "ann.zip"
    done = manage(data_dir, "export_user", "ann", "--to", str(target))
    assert done.returncode == 0, done.stderr
    assert str(target) in done.stdout

    with zipfile.ZipFile(target) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    everything = b"\n".join(members.values())
    for text in (
        "question about a pneumothorax",  # the first version of an edited question
        "edited",
        "answer: a visceral pleural line",
        "second answer",
        "thought",
        "second chat answer",
        "preset",
        "instructions",
        "token",
        "review of bob's answer",
    ):
        assert f"{ANN} {text}".encode() in everything, text
    # Every image of theirs, sent or not, byte for byte as stored.
    stored = files_under(data_dir / "uploads")
    for name in files["ann"]["files"]:
        assert stored[name] in members.values(), name
    assert any(name.startswith("unsent-images/") for name in members)
    chats = [json.loads(data) for name, data in members.items() if name.endswith("chat.json")]
    assert len(chats) == 2
    assert sum(len(chat["messages"]) for chat in chats) == 6  # 2 + 2 versions, and 2
    account = json.loads(members["account.json"])
    assert account["email"] == "ann@clinic.example" and "password" not in account
    # Nothing of bob's: not his chats, not his images, not his account.
    assert BOB.encode() not in everything
    assert b"bob@clinic.example" not in everything
    for name in files["bob"]["files"]:
        assert stored[name] not in members.values(), name
    # The export itself is on the record, with counts only.
    (row,) = query(
        data_dir, "SELECT target, detail FROM chat_auditevent WHERE action = ?", "user_export"
    )
    assert row[0].startswith("user:") and ANN not in row[1]


def test_erase_user_leaves_no_byte_of_theirs_in_the_database_or_data_dir(clinic, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(clinic[0], data_dir)
    files = clinic[1]
    stored = files_under(data_dir / "uploads")
    ann_images = [stored[name] for name in files["ann"]["files"]]
    # An automatic backup from before (lifecycle.upgrade) holds ann's data too.
    (data_dir / "backups").mkdir()
    (data_dir / "backups" / "before-upgrade-20260101-000000.tar.gz").write_bytes(
        b"an old backup " + ANN.encode()
    )

    done = manage(data_dir, "erase_user", "ann", "--yes")
    assert done.returncode == 0, done.stderr
    assert "Erased ann" in done.stdout and "before-upgrade" in done.stdout

    left = files_under(data_dir)
    for path, data in left.items():
        assert ANN.encode() not in data, path
        assert ANN.encode("utf-16-le") not in data, path
        for image in ann_images:
            # Any 64 bytes of the image's pixels would give it away.
            assert image[len(image) // 2 : len(image) // 2 + 64] not in data, path
        assert b"ann@clinic.example" not in data, path
    # The search finds what is there: bob's data is untouched.
    database = left["medserver.sqlite3"]
    assert f"{BOB} second chat answer".encode() in database
    assert all((data_dir / "uploads" / name).is_file() for name in files["bob"]["files"])
    # What is left of ann: an account that cannot sign in, and the audit row of the erasure.
    ((username, active, password),) = query(
        data_dir, "SELECT username, is_active, password FROM auth_user WHERE email = ''"
    )
    assert username.startswith("erased-") and not active and password.startswith("!")
    (row,) = query(
        data_dir, "SELECT username, target, detail FROM chat_auditevent WHERE action = 'user_erase'"
    )
    assert "command line" in row[0]
    assert row[2].startswith("erased ann: 2 chats, 6 messages, 3 images, 1 presets, 1 reviews")
    # The write-ahead log, which held the deleted rows' pages, is empty.
    assert not left.get("medserver.sqlite3-wal")
