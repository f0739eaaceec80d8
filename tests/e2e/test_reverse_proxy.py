"""MedServer behind nginx, configured by deploy/nginx/medserver.conf itself.

The documented file is run as it ships, with only its EDIT values replaced:
loopback ports for 80 and 443, a throwaway certificate, and the name
`medserver.test`, which MedServer is told about through MEDSERVER_ALLOWED_HOSTS.
nginx runs as a subprocess with its own prefix, pid and logs in a temporary
folder; the clients speak HTTPS and WSS to it and send that name as the Host,
as a browser on the clinic's network would.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import socket
import ssl
import subprocess
import time
import urllib.parse
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
from websockets.sync.client import connect

from medserver_site.config import ServerConfig
from tests.support.server import free_port, start_server
from tests.support.sockets import FINAL

PROJECT = Path(__file__).resolve().parents[2]
SITE_CONF = PROJECT / "deploy" / "nginx" / "medserver.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
NAME = "medserver.test"
PASSWORD = "a-long-passphrase"


@dataclass
class Proxy:
    process: subprocess.Popen
    https_port: int
    http_port: int
    folder: Path

    @property
    def origin(self) -> str:
        return f"https://{NAME}:{self.https_port}"


def render_site(medserver_port: int, https_port: int, http_port: int, tls: Path) -> str:
    """deploy/nginx/medserver.conf with its EDIT values set for this machine's loopback."""
    text = SITE_CONF.read_text()
    edits = [
        ("server 127.0.0.1:8000;", f"server 127.0.0.1:{medserver_port};", 1),
        ("listen 80;", f"listen 127.0.0.1:{http_port};", 1),
        ("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;", 1),
        ("listen [::]:80;", "", 1),
        ("listen [::]:443 ssl;", "", 1),
        ("server_name medserver.clinic.example;", f"server_name {NAME};", 2),
        ("/etc/ssl/certs/medserver.clinic.example.crt", str(tls / "cert.pem"), 1),
        ("/etc/ssl/private/medserver.clinic.example.key", str(tls / "key.pem"), 1),
    ]
    for old, new, count in edits:
        # The documented file must keep these lines, or the test would be testing another one.
        assert text.count(old) == count, f"{SITE_CONF} no longer has {old!r} {count} time(s)"
        text = text.replace(old, new)
    return text


def start_nginx(folder: Path, medserver_port: int, tls: Path) -> Proxy:
    folder.mkdir(parents=True)
    https_port, http_port = free_port(), free_port()
    (folder / "medserver.conf").write_text(render_site(medserver_port, https_port, http_port, tls))
    temp_paths = "\n".join(
        f"    {kind}_temp_path {folder / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (folder / "nginx.conf").write_text(
        f"""
daemon off;
master_process off;
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} info;
events {{ worker_connections 256; }}
http {{
    access_log {folder / "access.log"};
{temp_paths}
    include {folder / "medserver.conf"};
}}
"""
    )
    process = subprocess.Popen(
        [NGINX, "-p", str(folder), "-c", str(folder / "nginx.conf")]
        + ["-e", str(folder / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            raise AssertionError("nginx exited:\n" + (folder / "error.log").read_text())
        try:
            socket.create_connection(("127.0.0.1", https_port), timeout=1).close()
            return Proxy(process, https_port, http_port, folder)
        except OSError:
            assert time.monotonic() < deadline, (folder / "error.log").read_text()
            time.sleep(0.1)


def stop_nginx(proxy: Proxy) -> None:
    proxy.process.terminate()
    try:
        proxy.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proxy.process.kill()


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> Path:
    """A self-signed certificate for medserver.test; the clients trust exactly it."""
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
        + ["-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")]
        + ["-subj", f"/CN={NAME}", "-addext", f"subjectAltName=DNS:{NAME}"],
        check=True,
        capture_output=True,
    )
    return folder


def trusting(tls: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls / "cert.pem"))


class ClinicBrowser:
    """Speaks HTTPS to nginx on loopback as a browser that typed https://medserver.test:PORT."""

    def __init__(self, proxy: Proxy, tls: Path, host: str = NAME) -> None:
        self.proxy = proxy
        self.context = trusting(tls)
        self.host = f"{host}:{proxy.https_port}"
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: bytes | None = None, headers=None):
        """Send one request; return (status, headers, body text)."""
        connection = http.client.HTTPSConnection(
            "127.0.0.1", self.proxy.https_port, context=self.context, timeout=30
        )
        connection.sock = self.context.wrap_socket(
            socket.create_connection(("127.0.0.1", self.proxy.https_port), timeout=30),
            server_hostname=NAME,
        )
        sent = {"Host": self.host, **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        for value in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(value).items():
                self.cookies[name] = morsel.value
        text = response.read().decode(errors="replace")
        connection.close()
        return response.status, response.headers, text

    def login(self, username: str) -> tuple[int, str]:
        """Post the login form as a browser does (Origin and Referer).

        Return the status of the post and the path the browser ends on.
        """
        self.request("GET", "/accounts/login/")
        form = urllib.parse.urlencode(
            {
                "username": username,
                "password": PASSWORD,
                "csrfmiddlewaretoken": self.cookies["csrftoken"],
            }
        ).encode()
        status, headers, _ = self.request(
            "POST",
            "/accounts/login/",
            body=form,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Origin": f"https://{self.host}",
                "Referer": f"https://{self.host}/accounts/login/",
            },
        )
        location = headers.get("Location", "")
        for _ in range(3):  # the home page sends on to a fresh chat
            if not location.startswith("/"):
                break
            step, step_headers, _ = self.request("GET", location)
            if step not in (301, 302):
                break
            location = step_headers["Location"]
        return status, location


@pytest.fixture(scope="module")
def medserver(tmp_path_factory):
    server = start_server(
        tmp_path_factory.mktemp("medserver-data"),
        "--behind-proxy",
        env={"MEDSERVER_ALLOWED_HOSTS": NAME},
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxy(medserver, tls, tmp_path_factory):
    port = int(medserver.url.rsplit(":", 1)[1])
    running = start_nginx(tmp_path_factory.mktemp("nginx") / "prefix", port, tls)
    yield running
    stop_nginx(running)


# --- pages


def test_login_page_loads_through_nginx_over_https(proxy, tls):
    status, headers, page = ClinicBrowser(proxy, tls).request("GET", "/accounts/login/")

    assert status == 200
    assert headers["Server"].startswith("nginx")
    assert 'name="csrfmiddlewaretoken"' in page


def test_plain_http_is_sent_to_https(proxy):
    connection = http.client.HTTPConnection("127.0.0.1", proxy.http_port, timeout=10)
    connection.request("GET", "/chat/new/", headers={"Host": NAME})
    response = connection.getresponse()

    assert response.status == 301
    assert response.headers["Location"] == f"https://{NAME}/chat/new/"


def test_a_host_name_medserver_was_not_told_about_is_refused(proxy, tls):
    status, _, _ = ClinicBrowser(proxy, tls, host="intruder.example").request(
        "GET", "/accounts/login/"
    )

    assert status == 400


def test_nginx_lets_through_the_largest_message_medserver_accepts():
    limit = re.search(r"^\s*client_max_body_size (\d+)m;", SITE_CONF.read_text(), re.M)
    config = ServerConfig()
    images = config.max_payload_bytes * config.max_image_count * 4 // 3  # base64 in JSON

    assert int(limit.group(1)) * 1024 * 1024 >= images + 4 * config.max_text_length


# --- a clinician's session through the proxy


def test_login_over_https_passes_the_csrf_origin_check(medserver, proxy, tls):
    medserver.create_user("dr-https")

    status, location = ClinicBrowser(proxy, tls).login("dr-https")

    assert status == 302, "Django refused the login (CSRF: Origin https://... not trusted?)"
    assert re.fullmatch(r"/chat/[0-9a-f-]{36}/", location)


def test_a_chat_answer_streams_over_a_websocket_through_nginx(medserver, proxy, tls):
    medserver.create_user("dr-wss")
    browser = ClinicBrowser(proxy, tls)
    _, session_path = browser.login("dr-wss")

    frames = []
    with connect(
        f"wss://{NAME}:{proxy.https_port}/ws{session_path}",
        sock=socket.create_connection(("127.0.0.1", proxy.https_port)),
        ssl=trusting(tls),
        server_hostname=NAME,
        additional_headers={
            "Cookie": f"sessionid={browser.cookies['sessionid']}",
            "Origin": proxy.origin,
        },
        open_timeout=10,
    ) as chat:
        chat.send(json.dumps({"action": "send", "content": "Signs of pneumothorax?"}))
        while not (final := FINAL.search(frame := chat.recv(timeout=60))):
            frames.append(frame)

    assert final.group(2) == "complete"
    assert len(frames) >= 3  # the answer came in pieces, not in one final frame
    _, _, page = browser.request("GET", session_path)
    assert "Signs of pneumothorax?" in page


def test_without_behind_proxy_an_https_login_is_refused(tls, tmp_path):
    """The other side of --behind-proxy: MedServer would take the page for plain HTTP."""
    server = start_server(tmp_path / "data", env={"MEDSERVER_ALLOWED_HOSTS": NAME})
    proxy = start_nginx(tmp_path / "nginx", int(server.url.rsplit(":", 1)[1]), tls)
    try:
        server.create_user("dr-plain")
        status, _ = ClinicBrowser(proxy, tls).login("dr-plain")
    finally:
        stop_nginx(proxy)
        server.stop()

    assert status == 403


# --- Server-Sent Events (the JSON API)


def test_sse_tokens_arrive_one_by_one_through_nginx(medserver, proxy, tls):
    medserver.create_user("dr-sse")
    token = medserver.manage("create_api_token", "dr-sse").strip().splitlines()[-1]
    context = trusting(tls)
    connection = http.client.HTTPSConnection("127.0.0.1", proxy.https_port, timeout=60)
    connection.sock = context.wrap_socket(
        socket.create_connection(("127.0.0.1", proxy.https_port)), server_hostname=NAME
    )
    body = {
        "messages": [{"role": "user", "content": "Describe a normal chest X-ray."}],
        # Long enough to span many of the server's 30 ms deliveries.
        "max_tokens": 300,
        "ignore_eos": True,
        "stream": True,
    }
    connection.request(
        "POST",
        "/api/chat",
        body=json.dumps(body),
        headers={
            "Host": f"{NAME}:{proxy.https_port}",
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
        },
    )
    response = connection.getresponse()
    # A 404 here is the routing break this test is for (the proxy or the URLconf lost /api/chat).
    assert response.status == 200, f"POST /api/chat through nginx: {response.status}"
    assert response.headers["Content-Type"].startswith("text/event-stream")

    # Each read returns what has reached the client; note when each token frame came.
    arrivals: list[float] = []
    buffer = b""
    while b"[DONE]" not in buffer:
        chunk = response.read1(65536)
        if not chunk:
            break
        buffer += chunk
        arrivals += [time.monotonic()] * (_token_frames(buffer) - len(arrivals))
    connection.close()

    assert b"data: [DONE]" in buffer
    assert len(arrivals) >= 5, buffer.decode()
    moments = sorted(set(arrivals))
    # Buffered by the proxy, they would all come at once at the end.
    assert len(moments) >= 3, f"token frames came in {len(moments)} burst(s)"
    assert moments[-1] - moments[0] > 0.02


def _token_frames(stream: bytes) -> int:
    """How many complete SSE frames carrying a token ("delta") the stream holds so far."""
    frames = stream.split(b"\n\n")[:-1]
    payloads = [f[6:] for f in frames if f.startswith(b"data: {")]
    return sum(1 for payload in payloads if "delta" in json.loads(payload))
