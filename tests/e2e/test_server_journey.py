"""`medserver -m demo` as a subprocess: ready quickly, login enforced, answers saved."""

from __future__ import annotations

import html
import json
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest
from websockets.sync.client import connect

from tests.support.browserless import Browserless
from tests.support.server import READY_WITHIN_SECONDS
from tests.support.sockets import FINAL


def test_server_is_ready_within_a_minute_and_says_so(server):
    assert server.ready_seconds < READY_WITHIN_SECONDS
    health = server.health()
    assert health["status"] == "ready"
    assert health["engine"] == "transformers"
    assert "demo" in health["model"]
    assert any("http://127.0.0.1:" in line for line in server.output)


def test_pages_need_a_login(server):
    client = Browserless(server.url)
    for path in ("/", "/chat/new/", "/admin/"):
        final_url = client.get(path).geturl()
        assert "/login/" in final_url, path


def test_logged_in_user_posts_a_message_and_reads_back_the_saved_answer(server):
    server.create_user("dr-ada")
    client = Browserless(server.url)
    session_url = client.login("dr-ada", "a-long-passphrase")
    session_path = urllib.parse.urlparse(session_url).path
    assert re.fullmatch(r"/chat/[0-9a-f-]{36}/", session_path)

    ws_url = server.url.replace("http://", "ws://") + "/ws" + session_path
    headers = {"Cookie": f"sessionid={client.cookie('sessionid')}", "Origin": server.url}
    with connect(ws_url, additional_headers=headers, open_timeout=10) as socket:
        socket.send(json.dumps({"action": "send", "content": "Findings of pneumothorax?"}))
        while True:
            frame = socket.recv(timeout=60)
            final = FINAL.search(frame)
            if final:
                break
    assert final.group(2) == "complete"

    page = client.get(session_path).read().decode()
    assert "Findings of pneumothorax?" in page
    answers = re.findall(
        r'data-message-role="assistant".*?<div class="message-content markdown"[^>]*>(.*?)</div>',
        page,
        re.S,
    )
    assert len(answers) == 1 and html.unescape(answers[0]).strip()


def test_unknown_session_is_not_found(server):
    server.create_user("dr-bo")
    client = Browserless(server.url)
    client.login("dr-bo", "a-long-passphrase")
    with pytest.raises(urllib.error.HTTPError) as error:
        client.get("/chat/00000000-0000-0000-0000-000000000000/")
    assert error.value.code == 404
