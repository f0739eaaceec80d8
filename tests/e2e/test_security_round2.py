"""Security round 2 against a live `medserver -m demo`, as an attacker on the LAN
would try it: raw WebSockets with a session cookie, raw HTTP, concurrent posts.

The module's server starts on a fresh data dir: the first test uses its setup
link, and the administrator it creates manages the accounts of the others.
"""

from __future__ import annotations

import io
import json
import re
import select
import socket
import sqlite3
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing

import pytest
from PIL import Image
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.support.browserless import Browserless
from tests.support.server import start_server

PASSWORD = "a-long-passphrase"
SIGNED_OUT_WITHIN_SECONDS = 1.0


def database(server):
    return closing(sqlite3.connect(server.data_dir / "medserver.sqlite3", timeout=10))


class Clinic(Browserless):
    """A browser's cookies, and its form posts with their CSRF token."""

    def post(self, path: str, fields: dict, **headers):
        body = urllib.parse.urlencode({**fields, "csrfmiddlewaretoken": self.cookie("csrftoken")})
        request = urllib.request.Request(
            self.base + path, data=body.encode(), headers={"Referer": self.base + "/", **headers}
        )
        return self.opener.open(request, timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # Every test signs a clinician in from 127.0.0.1: a budget that is no test's subject.
    running = start_server(tmp_path_factory.mktemp("medserver-data"), "--rate-limit", "1000/m")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def admin(server) -> Clinic:
    """The administrator, created by the first test's race for the setup link."""
    with database(server) as db:
        (username,) = db.execute("SELECT username FROM auth_user WHERE is_superuser").fetchone()
    clinic = Clinic(server.url)
    clinic.login(username, PASSWORD)
    return clinic


def add_user(server, admin: Clinic, username: str) -> int:
    """Add a clinician's account through admin, as the administrator does; return its id."""
    admin.get("/admin/auth/user/add/")
    fields = {"username": username, "password1": PASSWORD, "password2": PASSWORD}
    admin.post("/admin/auth/user/add/", {**fields, "usable_password": "true"})
    with database(server) as db:
        return db.execute("SELECT id FROM auth_user WHERE username = ?", (username,)).fetchone()[0]


class Chat:
    """A clinician signed in with their own browser, and a socket to their chat."""

    def __init__(self, server, admin: Clinic, username: str) -> None:
        self.user_id = add_user(server, admin, username)
        self.client = Clinic(server.url)
        self.path = urllib.parse.urlparse(self.client.login(username, PASSWORD)).path
        self.url = server.url.replace("http://", "ws://") + "/ws" + self.path
        self.session_key = self.client.cookie("sessionid")

    def socket(self, origin: str | None = None):
        headers = {"Cookie": f"sessionid={self.session_key}", "Origin": origin or self.client.base}
        return connect(self.url, additional_headers=headers, open_timeout=10, close_timeout=2)


def close_code(ws, timeout: float) -> int | None:
    """The code the server closes the socket with within `timeout` seconds, else None."""
    deadline = time.monotonic() + timeout
    try:
        while (left := deadline - time.monotonic()) > 0:
            ws.recv(timeout=left)
    except TimeoutError:
        return None
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None
    return None


def saved_questions(server) -> int:
    with database(server) as db:
        return db.execute("SELECT COUNT(*) FROM chat_message WHERE role = 'user'").fetchone()[0]


def no_traceback(server) -> None:
    output = "".join(server.output)
    assert "Traceback" not in output and "UpdateError" not in output, output[-3000:]


# --- the setup link (first: the data dir is fresh)


def test_the_setup_link_creates_one_administrator_under_concurrent_posts(server):
    link = urllib.parse.urlparse(server.setup_link()).path
    racers = [Clinic(server.url) for _ in range(6)]
    for racer in racers:
        racer.get(link)
    start = threading.Barrier(len(racers))

    def race(n: int) -> int:
        start.wait()
        fields = {"username": f"admin{n}", "password1": PASSWORD, "password2": PASSWORD}
        try:
            return racers[n].post(link, fields).status
        except urllib.error.HTTPError as refused:
            return refused.code

    with ThreadPoolExecutor(len(racers)) as pool:
        codes = list(pool.map(race, range(len(racers))))

    with database(server) as db:
        assert db.execute("SELECT COUNT(*) FROM auth_user").fetchone()[0] == 1
    assert sorted(codes) == [200] + [404] * (len(racers) - 1)


# --- an open socket follows its sign-in


def test_signing_out_closes_the_open_socket_within_a_second(server, admin):
    chat = Chat(server, admin, "dr-signout")
    with chat.socket() as ws:
        chat.client.post("/accounts/logout/", {})
        assert close_code(ws, SIGNED_OUT_WITHIN_SECONDS) == 4401
    no_traceback(server)


def test_disabling_the_account_in_admin_closes_its_socket_within_a_second(server, admin):
    chat = Chat(server, admin, "dr-disabled")
    change = f"/admin/auth/user/{chat.user_id}/change/"
    page = admin.get(change).read().decode()
    joined = re.search(r'name="date_joined_0" value="([^"]+)"', page).group(1)
    joined_time = re.search(r'name="date_joined_1" value="([^"]+)"', page).group(1)
    with chat.socket() as ws:
        fields = {"username": "dr-disabled", "date_joined_0": joined, "date_joined_1": joined_time}
        admin.post(change, fields)  # is_active left unticked
        assert close_code(ws, SIGNED_OUT_WITHIN_SECONDS) == 4401
    with database(server) as db:
        active = db.execute("SELECT is_active FROM auth_user WHERE id = ?", (chat.user_id,))
        assert active.fetchone()[0] == 0
    no_traceback(server)


def test_a_new_password_set_in_admin_closes_the_socket_within_a_second(server, admin):
    chat = Chat(server, admin, "dr-newpass")
    with chat.socket() as ws:
        new = "another-long-passphrase"
        admin.get(f"/admin/auth/user/{chat.user_id}/password/")
        admin.post(
            f"/admin/auth/user/{chat.user_id}/password/", {"password1": new, "password2": new}
        )
        assert close_code(ws, SIGNED_OUT_WITHIN_SECONDS) == 4401
    no_traceback(server)


def test_a_late_frame_after_the_session_was_removed_closes_with_4401_not_1011(server, admin):
    """The session removed where no signal is sent (another process, clearsessions)."""
    chat = Chat(server, admin, "dr-late")
    with chat.socket() as ws:
        with database(server) as db, db:
            db.execute("DELETE FROM django_session WHERE session_key = ?", (chat.session_key,))
        ws.send(json.dumps({"action": "send", "content": "Am I still here?"}))
        assert close_code(ws, 10) == 4401
    assert saved_questions(server) == 0
    no_traceback(server)


def test_a_socket_idle_past_the_timeout_closes_with_4401_at_its_next_frame(server, admin):
    chat = Chat(server, admin, "dr-idle")
    with chat.socket() as ws:
        server.manage(
            "shell",
            "-c",
            "import time; from django.contrib.sessions.backends.db import SessionStore; "
            f"s = SessionStore('{chat.session_key}'); "
            "s['medserver_last_activity'] = time.time() - 31 * 60; s.save()",
        )
        ws.send(json.dumps({"action": "send", "content": "After lunch"}))
        assert "signed out" in ws.recv(timeout=10)
        assert close_code(ws, 10) == 4401
    assert saved_questions(server) == 0


@pytest.mark.parametrize(
    "frame",
    [
        '{"action": "regenerate", "message_id": 1e400}',
        '{"action": "regenerate", "message_id": Infinity}',
        '{"action": "edit", "message_id": NaN, "text": "x"}',
        '{"action": "regenerate", "message_id": ' + "9" * 30 + "}",
        '{"action": "regenerate", "message_id": [1]}',
    ],
)
def test_hostile_frames_get_an_error_frame_and_the_socket_stays_open(server, admin, frame):
    chat = Chat(server, admin, f"dr-hostile-{abs(hash(frame)) % 10**6}")
    with chat.socket() as ws:
        ws.send(frame)
        assert "not understood" in ws.recv(timeout=10)
        ws.send(json.dumps({"action": "dance"}))
        assert "not understood" in ws.recv(timeout=10)
    no_traceback(server)


@pytest.mark.parametrize(
    "origin", ["http://127.0.0.1:5555", "file://127.0.0.1", "https://{host}", "null"]
)
def test_a_socket_from_another_origin_is_refused(server, admin, origin):
    chat = Chat(server, admin, f"dr-origin-{abs(hash(origin)) % 10**6}")
    host = urllib.parse.urlparse(server.url).netloc
    with pytest.raises(InvalidStatus) as refused, chat.socket(origin=origin.format(host=host)):
        pass
    assert refused.value.response.status_code == 403
    with chat.socket():  # the page's own origin is accepted
        pass


# --- request bodies


def raw_exchange(server, head: str, body_chunks=(), *, pause: float = 0.0) -> tuple[int, str]:
    """Send a request by hand (head, then the chunks, until the server answers, as
    a browser does); return the status and the body of the answer."""
    address = urllib.parse.urlparse(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as conn:
        conn.sendall(head.encode())
        for chunk in body_chunks:
            if select.select([conn], [], [], pause or 0.01)[0]:
                break  # answered: send no more
            conn.sendall(chunk)
        received = b""
        while data := conn.recv(65536):
            received += data
    status = int(received.split(b" ", 2)[1])
    return status, received.partition(b"\r\n\r\n")[2].decode(errors="replace")


def head(server, method: str, path: str, **headers) -> str:
    host = urllib.parse.urlparse(server.url).netloc
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return "\r\n".join(lines) + "\r\n\r\n"


def test_a_sign_in_body_over_its_limit_is_refused_before_it_is_read(server):
    started = time.monotonic()
    status, _ = raw_exchange(
        server,
        head(server, "POST", "/accounts/login/", Content_Length=300 * 1024 * 1024),
    )
    assert status == 413 and time.monotonic() - started < 5


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_routes_limit(server):
    sent = []

    def chunks():
        for _ in range(5000):  # up to 320 MB, if nobody stopped it
            piece = b"x" * 65536
            sent.append(len(piece))
            yield b"%x\r\n%s\r\n" % (len(piece), piece)

    status, body = raw_exchange(
        server, head(server, "POST", "/api/health", Transfer_Encoding="chunked"), chunks()
    )
    assert status == 413
    assert "larger than 64 KB" in json.loads(body)["error"]["message"]
    assert sum(sent) < 16 * 1024 * 1024  # stopped long before 300 MB


def test_a_body_that_trickles_in_is_refused_with_408(server):
    started = time.monotonic()
    status, _ = raw_exchange(
        server,
        head(server, "POST", "/accounts/login/", Content_Length=4000),
        (b"u" for _ in range(60)),
        pause=1.0,
    )
    assert status == 408 and time.monotonic() - started < 20


def test_analyze_with_a_multipart_body_without_boundary_or_broken_is_a_json_400(server, admin):
    chat = Chat(server, admin, "dr-multipart")
    token = chat.client.cookie("csrftoken")
    cookie = f"sessionid={chat.session_key}; csrftoken={token}"
    broken = b'--XYZ\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nhi\r\n--XY'
    for content_type, body in [
        ("multipart/form-data", b"prompt=hi"),
        ("multipart/form-data; boundary=XYZ", broken),
        ("multipart/form-data; boundary=", b"--\r\n"),
    ]:
        request = urllib.request.Request(
            server.url + "/api/analyze",
            data=body,
            headers={"Content-Type": content_type, "Cookie": cookie, "X-CSRFToken": token},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code in (400, 422), content_type
        assert json.load(refused.value)["error"]["message"], content_type
    no_traceback(server)


# --- the data dir


def test_the_live_database_refuses_to_change_or_delete_audit_events(server, admin):
    with database(server) as db:
        assert db.execute("SELECT COUNT(*) FROM chat_auditevent").fetchone()[0] > 0
        for statement in ("DELETE FROM chat_auditevent", "UPDATE chat_auditevent SET detail = 'x'"):
            with pytest.raises(sqlite3.IntegrityError, match="audit events are never"):
                db.execute(statement)


def test_unsent_uploads_older_than_a_day_are_removed_when_the_server_starts(server, admin):
    """Last in the module: it restarts the server on the same data dir."""
    chat = Chat(server, admin, "dr-unsent")
    image = io.BytesIO()
    Image.new("L", (64, 64), color=90).save(image, format="PNG")
    png = image.getvalue()
    boundary = "b0undary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="images"; filename="x.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + png
        + f"\r\n--{boundary}--\r\n".encode()
    )
    upload = urllib.request.Request(
        server.url + chat.path + "attachments/",
        data=body,
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "X-CSRFToken": chat.client.cookie("csrftoken"),
            "Referer": server.url + "/",
        },
    )
    chat.client.opener.open(upload, timeout=30)
    with database(server) as db, db:
        ((name,),) = db.execute("SELECT file FROM chat_attachment WHERE message_id IS NULL")
        db.execute("UPDATE chat_attachment SET created_at = datetime('now', '-25 hours')")
    stored = server.data_dir / "uploads" / name
    assert stored.exists()

    server.stop()
    restarted = start_server(server.data_dir, "--rate-limit", "1000/m")
    try:
        with database(restarted) as db:
            assert db.execute("SELECT COUNT(*) FROM chat_attachment").fetchone()[0] == 0
        assert not stored.exists()
    finally:
        restarted.stop()
