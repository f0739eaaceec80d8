"""`medserver backup` while a live server streams answers, takes uploads and deletes chats.

The backup restores into a fresh data dir whole: the database passes its
integrity check, every message and upload acknowledged before the backup began
is there, and no image row is without its file.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field

from websockets.sync.client import connect

from tests.e2e.test_crash_durability import Chat
from tests.lifecycle.content import noise_png
from tests.lifecycle.datadir import files_under, medserver, query
from tests.support.browserless import Browserless
from tests.support.server import start_server
from tests.support.sockets import FINAL

PASSWORD = "a-long-passphrase"
SERVER_ARGS = (
    *("--rate-limit", "100000/minute", "--max-user-streams", "4"),
    *("--max-new-tokens", "48", "--loop-guard", "0"),
)


@dataclass
class Acks:
    """What the server acknowledged, and when (time.monotonic())."""

    answers: list[tuple[float, int, str, str]] = field(default_factory=list)  # id, text, chat
    uploads: list[tuple[float, str, str]] = field(default_factory=list)  # uuid hex, chat path
    deleted: list[tuple[float, str]] = field(default_factory=list)  # chat path
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, *item) -> None:
        with self.lock:
            getattr(self, kind).append((time.monotonic(), *item))

    def before(self, kind: str, moment: float) -> list[tuple]:
        with self.lock:
            return [item[1:] for item in getattr(self, kind) if item[0] < moment]


def ask(socket, text: str, attachments=()) -> int:
    """Send a question; return the finished answer's id."""
    socket.send(json.dumps({"action": "send", "content": text, "attachments": list(attachments)}))
    frames = []
    while True:
        try:
            frames.append(socket.recv(timeout=60))
        except TimeoutError:
            raise AssertionError(f"no answer to {text!r}: {frames[-3:]}") from None
        final = FINAL.search(frames[-1])
        if final:
            assert final.group(2) == "complete"
            return int(final.group(1))


def keep_asking(server, acks: Acks, stop: threading.Event) -> None:
    chat = Chat(server, "dr-backup")
    with chat.socket() as socket:
        for number in range(1000):
            if stop.is_set():
                return
            question = f"Question {number}: signs of a tension pneumothorax?"
            acks.add("answers", ask(socket, question), question, chat.path)


def keep_uploading(server, acks: Acks, stop: threading.Event) -> None:
    """New chat, two images, a question with them; every other chat deleted again."""
    client = Browserless(server.url)
    client.login("dr-upload", PASSWORD)
    for number in range(1000):
        if stop.is_set():
            return
        path = urllib.parse.urlparse(post(client, "/chat/new/", b"")[0]).path
        ids = [upload(client, path) for _ in range(2)]
        for attachment in ids:
            acks.add("uploads", uuid.UUID(attachment).hex, path)
        url = server.url.replace("http://", "ws://") + "/ws" + path
        headers = {"Cookie": f"sessionid={client.cookie('sessionid')}", "Origin": server.url}
        with connect(url, additional_headers=headers, open_timeout=10) as socket:
            question = f"Images {number}: what do these show?"
            acks.add("answers", ask(socket, question, ids), question, path)
        if number % 2:
            post(client, path + "delete/", b"")
            acks.add("deleted", path)


def upload(client: Browserless, path: str) -> str:
    boundary = uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="images"; filename="scan.png"\r\n'
        "Content-Type: image/png\r\n\r\n".encode()
        + noise_png(64)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    _, page = post(client, path + "attachments/", body, f"multipart/form-data; boundary={boundary}")
    (attachment,) = re.findall(r'name="attachments" value="([0-9a-f-]{36})"', page)
    return attachment


def post(client: Browserless, path: str, body: bytes, content_type: str = "") -> tuple[str, str]:
    """POST as the page does; return the URL it ends at, and the page."""
    headers = {"X-CSRFToken": client.cookie("csrftoken"), "Referer": client.base + "/"}
    if content_type:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(client.base + path, data=body, headers=headers)
    with client.opener.open(request, timeout=30) as response:
        assert response.status == 200
        return response.geturl(), response.read().decode()


def test_backup_while_answers_stream_and_uploads_arrive_restores_whole(tmp_path):
    server = start_server(tmp_path / "data", *SERVER_ARGS)
    acks, stop = Acks(), threading.Event()
    try:
        # dr-backup asks, in one chat; dr-upload uploads, asks about the images, deletes chats.
        server.manage(
            "shell",
            "-c",
            "from django.contrib.auth.models import User\n"
            "for name in ('dr-backup', 'dr-upload'):\n"
            f"    User.objects.create_user(name, password={PASSWORD!r})",
        )
        workers = [
            threading.Thread(target=work, args=(server, acks, stop), daemon=True)
            for work in (keep_asking, keep_uploading)
        ]
        for worker in workers:
            worker.start()
        started = time.monotonic()
        while len(acks.answers) < 4 or len(acks.deleted) < 1:
            assert time.monotonic() - started < 120, "the server never got going"
            assert all(worker.is_alive() for worker in workers), "a client failed"
            time.sleep(0.1)

        began = time.monotonic()
        archive = tmp_path / "live.tar.gz"
        done = medserver("backup", "--to", str(archive), data_dir=server.data_dir)
        ended = time.monotonic()
        assert done.returncode == 0, done.stderr
        time.sleep(0.5)
        stop.set()
        for worker in workers:
            worker.join(timeout=90)
        during = [t for t, *_ in acks.answers + acks.uploads + acks.deleted if began < t < ended]
        assert during, "nothing happened while the backup was taken"
    finally:
        stop.set()
        server.stop()

    restored = tmp_path / "restored"
    done = medserver("restore", str(archive), "--data-dir", str(restored))
    assert done.returncode == 0, done.stderr
    assert query(restored, "PRAGMA integrity_check") == [("ok",)]

    deleted_before = {path for (path,) in acks.before("deleted", began)}
    deleted_by_end = {path for (path,) in acks.before("deleted", ended)}
    for answer_id, question, path in acks.before("answers", began):
        rows = query(
            restored,
            "SELECT a.status, q.content FROM chat_message a "
            "JOIN chat_message q ON q.id = a.parent_id WHERE a.id = ?",
            answer_id,
        )
        if path in deleted_before:
            assert rows == [], (answer_id, question)
        elif path not in deleted_by_end:  # deleted while the backup ran: either state is whole
            assert rows == [("complete", question)], (answer_id, question)
    live_files = files_under(server.data_dir / "uploads")
    restored_files = files_under(restored / "uploads")
    for attachment, path in acks.before("uploads", began):
        found = query(restored, "SELECT file FROM chat_attachment WHERE id = ?", attachment)
        if path in deleted_before:
            assert found == [], attachment
        elif path not in deleted_by_end:
            ((file,),) = found
            assert restored_files[file] == live_files[file]
    # No row without its file, whatever the backup caught mid-way.
    for (file,) in query(restored, "SELECT file FROM chat_attachment"):
        assert file in restored_files, file
