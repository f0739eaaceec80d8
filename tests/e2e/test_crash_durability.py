"""SIGKILL of a live `medserver -m demo` in the middle of an answer: nothing saved is lost.

The answer being written is saved in steps; after the kill the database is
intact, every message saved before it is there on restart, and the cut-off
answer keeps the text it had, marked interrupted, in the page too.
"""

from __future__ import annotations

import html
import json
import re
import signal
import sqlite3
import time
import urllib.parse
from contextlib import closing

import pytest
from websockets.sync.client import connect

from chat.markdown import render_markdown
from chat.services import INTERRUPTED
from tests.support.browserless import Browserless
from tests.support.server import start_server
from tests.support.sockets import DELTA, FINAL, streamed_text, visible_text

PASSWORD = "a-long-passphrase"
SERVER_ARGS = ("--max-new-tokens", "4000", "--loop-guard", "0", "--default-temperature", "0")
# Greedy prompts the demo model answers at length; tried in turn until one is cut mid-answer.
LONG_PROMPTS = (
    "List every bone of the human body.",
    "Write a very long, detailed essay on the history of medicine.",
    "Explain every step of a full physical examination in detail.",
)
KILL_AFTER_SECONDS = 1.5


def database(server):
    return closing(sqlite3.connect(server.data_dir / "medserver.sqlite3", timeout=10))


def saved_messages(server) -> list[tuple]:
    with database(server) as db:
        return db.execute(
            "SELECT id, role, content, status, error FROM chat_message ORDER BY id"
        ).fetchall()


def saved_content(server, message_id: int) -> str:
    with database(server) as db:
        row = db.execute("SELECT content FROM chat_message WHERE id = ?", (message_id,)).fetchone()
    return row[0] if row else ""


def letters(text: str) -> str:
    """The letters and digits of a text: markup and spacing left out."""
    return re.sub(r"[\W_]+", "", text)


class Chat:
    """A signed-in user's socket to one session of a live server."""

    def __init__(self, server, username: str) -> None:
        self.client = Browserless(server.url)
        self.path = urllib.parse.urlparse(self.client.login(username, PASSWORD)).path
        self.url = server.url.replace("http://", "ws://") + "/ws" + self.path
        self.headers = {
            "Cookie": f"sessionid={self.client.cookie('sessionid')}",
            "Origin": server.url,
        }

    def socket(self):
        return connect(self.url, additional_headers=self.headers, open_timeout=10, close_timeout=1)

    def ask(self, text: str) -> str:
        """Send a question and wait for its answer; return the final status."""
        with self.socket() as socket:
            socket.send(json.dumps({"action": "send", "content": text}))
            while True:
                final = FINAL.search(socket.recv(timeout=60))
                if final:
                    return final.group(2)

    def page(self) -> str:
        return self.client.get(self.path).read().decode()


def start_and_cut(server, chat: Chat, prompt: str) -> tuple[int, str] | None:
    """Ask `prompt`; once text has streamed for KILL_AFTER_SECONDS and some of it is
    saved, SIGKILL the server. Return (answer id, text streamed), or None if the
    answer finished first."""
    with chat.socket() as socket:
        socket.send(json.dumps({"action": "send", "content": prompt}))
        sent = time.monotonic()
        frames: list[str] = []
        answer_id = None
        while True:
            frame = socket.recv(timeout=60)
            if FINAL.search(frame):
                return None
            frames.append(frame)
            delta = DELTA.search(frame)
            if delta:
                answer_id = int(delta.group(1))
            if (
                answer_id
                and streamed_text(frames)
                and time.monotonic() - sent >= KILL_AFTER_SECONDS
                and saved_content(server, answer_id)
            ):
                server.process.send_signal(signal.SIGKILL)
                server.process.wait(timeout=10)
                return answer_id, streamed_text(frames)


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


def test_sigkill_mid_answer_keeps_every_saved_message_and_the_text_so_far(data_dir):
    server = start_server(data_dir, *SERVER_ARGS)
    try:
        server.create_user("dr-kill")
        chat = Chat(server, "dr-kill")
        assert chat.ask("Hello") == "complete"
        cut = None
        for prompt in LONG_PROMPTS:
            cut = start_and_cut(server, chat, prompt)
            if cut:
                break
        assert cut, "every answer finished before the kill; find a longer prompt"
    finally:
        if server.process.poll() is None:
            server.stop()
    answer_id, streamed = cut
    assert server.process.returncode == -signal.SIGKILL

    with database(server) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    before = saved_messages(server)
    assert [row[3] for row in before if row[0] == answer_id] == ["streaming"]

    restarted = start_server(data_dir, *SERVER_ARGS)
    try:
        after = saved_messages(restarted)
        # Every message saved before the kill is there, as it was (but the cut answer).
        assert [row for row in after if row[0] != answer_id] == [
            row for row in before if row[0] != answer_id
        ]
        (cut_answer,) = [row for row in after if row[0] == answer_id]
        _, role, content, status, error = cut_answer
        assert (role, status, error) == ("assistant", "error", INTERRUPTED)
        # What was shown before the kill is kept, up to the last save. Compared as a
        # reader sees it; the last few letters may still have been an open block.
        kept = letters(visible_text(render_markdown(content)))
        assert len(kept) > 10, f"too little of the streamed answer was saved: {content!r}"
        assert letters(streamed).startswith(kept[:-10]), (content, streamed)

        chat = Chat(restarted, "dr-kill")
        page = chat.page()
        article = re.search(
            rf'<article class="message" id="message-{answer_id}".*?</article>', page, re.S
        )
        assert article, "the cut-off answer is not on the page"
        assert 'data-status="error"' in article.group(0)
        assert html.escape(INTERRUPTED, quote=False) in article.group(0)
        assert letters(visible_text(article.group(0))).find(kept[: len(kept) // 2]) >= 0

        # The restarted server answers normally, after the interrupted one.
        assert chat.ask("Hello again") == "complete"
        final = saved_messages(restarted)
        assert final[: len(after)] == after
        assert [row[3] for row in final[len(after) :]] == ["complete", "complete"]
    finally:
        restarted.stop()


def test_streamed_text_is_saved_within_a_second_of_being_shown(data_dir):
    server = start_server(data_dir, *SERVER_ARGS)
    try:
        server.create_user("dr-save")
        chat = Chat(server, "dr-save")
        with chat.socket() as socket:
            socket.send(json.dumps({"action": "send", "content": LONG_PROMPTS[0]}))
            while not (delta := DELTA.search(socket.recv(timeout=60))):
                pass
            shown = time.monotonic()
            answer_id = int(delta.group(1))
            while not saved_content(server, answer_id) and time.monotonic() - shown < 5:
                time.sleep(0.02)
            delay = time.monotonic() - shown
            # Killed with the socket open: no waiting for a 4000-token answer to end.
            server.process.kill()
    finally:
        server.process.kill()
        server.process.wait(timeout=10)
    assert delay <= 1.25, f"the first text was saved {delay:.2f} s after it was shown"
