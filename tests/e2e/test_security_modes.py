"""HTTPS through Daphne, the loopback-only no-auth mode, and `check --deploy` with TLS."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import ssl
import subprocess
import sys
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.sync.client import connect

from tests.support.server import start_server
from tests.support.sockets import FINAL

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path, ssl.SSLContext]:
    """A self-signed certificate for 127.0.0.1, as a clinic's own CA would issue."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "medserver.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(cafile=str(cert_path))
    return cert_path, key_path, context


def opener(context=None) -> tuple[urllib.request.OpenerDirector, CookieJar]:
    jar = CookieJar()
    handlers = [urllib.request.HTTPCookieProcessor(jar)]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    return urllib.request.build_opener(*handlers), jar


def test_https_serves_the_chat_with_secure_cookies_and_hsts(certificate, tmp_path):
    cert, key, context = certificate
    server = start_server(
        tmp_path, "--ssl-certfile", str(cert), "--ssl-keyfile", str(key), tls=context
    )
    try:
        assert server.url.startswith("https://")
        assert any("https://127.0.0.1:" in line for line in server.output)
        server.manage(
            "createsuperuser",
            "--noinput",
            "--username",
            "tls",
            "--email",
            "tls@clinic.example",
            DJANGO_SUPERUSER_PASSWORD="a-long-passphrase",
            MEDSERVER_SSL_CERTFILE=str(cert),
            MEDSERVER_SSL_KEYFILE=str(key),
        )
        browser, jar = opener(context)
        login_page = browser.open(f"{server.url}/accounts/login/", timeout=10)
        assert "max-age=" in login_page.headers["Strict-Transport-Security"]
        csrf = next(c for c in jar if c.name == "csrftoken")
        assert csrf.secure
        body = urllib.parse.urlencode(
            {"username": "tls", "password": "a-long-passphrase", "csrfmiddlewaretoken": csrf.value}
        ).encode()
        request = urllib.request.Request(
            f"{server.url}/accounts/login/", data=body, headers={"Referer": server.url + "/"}
        )
        session_path = urllib.parse.urlparse(browser.open(request, timeout=10).geturl()).path
        session = next(c for c in jar if c.name == "sessionid")
        assert session.secure and session_path.startswith("/chat/")

        ws_url = server.url.replace("https://", "wss://") + "/ws" + session_path
        headers = {"Cookie": f"sessionid={session.value}", "Origin": server.url}
        with connect(ws_url, additional_headers=headers, ssl=context, open_timeout=10) as socket:
            socket.send(json.dumps({"action": "send", "content": "Over TLS"}))
            while not (final := FINAL.search(socket.recv(timeout=60))):
                pass
        assert final.group(2) == "complete"

        plain = server.url.replace("https://", "http://")
        with pytest.raises(OSError):  # the port speaks TLS only
            urllib.request.urlopen(f"{plain}/api/health", timeout=5)
    finally:
        server.stop()


def test_check_deploy_is_clean_with_tls(certificate, tmp_path):
    cert, key, _ = certificate
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "medserver_site.settings",
        "MEDSERVER_DATA_DIR": str(tmp_path),
        "MEDSERVER_SSL_CERTFILE": str(cert),
        "MEDSERVER_SSL_KEYFILE": str(key),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_no_auth_on_loopback_serves_without_a_sign_in(tmp_path):
    server = start_server(tmp_path, "--no-auth")
    try:
        browser, _ = opener()
        page = browser.open(f"{server.url}/", timeout=10)
        assert urllib.parse.urlparse(page.geturl()).path.startswith("/chat/")
        assert 'name="content"' in page.read().decode()
        assert any("No sign-in" in line for line in server.output)
    finally:
        server.stop()
