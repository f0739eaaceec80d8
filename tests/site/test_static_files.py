"""Static files and pages travel compressed; static files are cached by name, for good."""

from __future__ import annotations

import gzip

import pytest
from channels.testing import HttpCommunicator
from django.contrib.staticfiles.storage import staticfiles_storage
from django.http import HttpResponse, StreamingHttpResponse
from django.test import RequestFactory

from medserver_site import static_files
from medserver_site.middleware import GZipMiddleware
from medserver_site.settings import BASE_DIR

STYLESHEET = BASE_DIR / "static" / "css" / "medserver.css"


@pytest.fixture
def collected(settings, tmp_path):
    """The static files as `medserver` collects them at start, in a folder of the test's own."""
    settings.STATIC_ROOT = tmp_path / "static"
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    settings.WHITENOISE_USE_FINDERS = False
    static_files.collect()
    return settings.STATIC_ROOT


async def not_static(scope, receive, send):
    await send({"type": "http.response.start", "status": 418, "headers": []})
    await send({"type": "http.response.body", "body": b"not static"})


async def fetch(path: str, headers=()) -> dict:
    app = static_files.StaticFilesApp(not_static)
    response = await HttpCommunicator(app, "GET", path, headers=list(headers)).get_response()
    response["headers"] = {name.decode(): value.decode() for name, value in response["headers"]}
    return response


async def test_a_collected_file_is_sent_gzipped_and_cached_for_good(collected):
    url = staticfiles_storage.url("css/medserver.css")
    assert url != "/static/css/medserver.css"  # its name carries a hash of its content
    response = await fetch(url, [(b"accept-encoding", b"gzip, deflate, br")])
    assert response["status"] == 200
    assert response["headers"]["content-encoding"] == "gzip"
    assert "immutable" in response["headers"]["cache-control"]
    assert response["headers"]["x-content-type-options"] == "nosniff"
    assert gzip.decompress(response["body"]) == STYLESHEET.read_bytes()
    assert len(response["body"]) < STYLESHEET.stat().st_size / 3


async def test_a_client_without_gzip_gets_the_file_as_it_is(collected):
    response = await fetch(staticfiles_storage.url("css/medserver.css"))
    assert "content-encoding" not in response["headers"]
    assert response["body"] == STYLESHEET.read_bytes()


async def test_a_plain_name_is_not_cached_for_long_and_other_paths_go_on(collected):
    plain = await fetch("/static/css/medserver.css")
    assert plain["status"] == 200 and "immutable" not in plain["headers"]["cache-control"]
    assert (await fetch("/static/css/missing.css"))["body"] == b"not static"
    assert (await fetch("/chat/"))["body"] == b"not static"


def test_pages_are_gzipped_for_clients_that_accept_it(client):
    response = client.get("/accounts/login/", headers={"accept-encoding": "gzip"})
    assert response["Content-Encoding"] == "gzip"
    assert b"<form" in gzip.decompress(response.content)
    assert "Content-Encoding" not in client.get("/accounts/login/")


def test_a_streamed_response_is_not_gzipped():
    """Server-Sent Events go as written: gzip would hold them back."""
    request = RequestFactory().get("/api/chat", headers={"accept-encoding": "gzip"})
    events = [b"data: one\n\n", b"data: two\n\n"]
    middleware = GZipMiddleware(lambda request: StreamingHttpResponse(iter(events)))
    response = middleware(request)
    assert not response.has_header("Content-Encoding")
    assert list(response.streaming_content) == events
    whole = GZipMiddleware(lambda request: HttpResponse(b"x" * 1000))(request)
    assert whole["Content-Encoding"] == "gzip"
