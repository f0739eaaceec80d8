"""Hostile input through the real paths: the upload view, /api/chat, /api/analyze, the socket.

Broken and malicious images, wrong labels, huge and malformed JSON and bad
roles are each refused with a message a person can act on; nothing is saved,
and the server goes on answering /api/health.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test.client import MULTIPART_CONTENT
from PIL import Image

from api import tokens as api_tokens
from chat import services
from chat.models import Attachment, ChatSession, Message
from tests.support.sockets import open_socket

MB = 1024 * 1024
# What every refusal of an image, on the page or in the API, says in some form.
IMAGE_REFUSAL = ("could not be read as an image", "not a PNG, JPEG or WebP", "too many pixels")


# --- the corpus


def png(size=(16, 12)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color=(200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def jpeg(size=(16, 12)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color=(30, 200, 30)).save(out, "JPEG")
    return out.getvalue()


def gif() -> bytes:
    out = io.BytesIO()
    Image.new("P", (8, 8)).save(out, "GIF")
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A real PNG whose header then claims `width` x `height` (CRC fixed, so it parses)."""
    raw = bytearray(png((4, 4)))
    ihdr = raw.index(b"IHDR")
    raw[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    raw[ihdr + 17 : ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(raw[ihdr : ihdr + 17])))
    return bytes(raw)


def zip_with_png_header() -> bytes:
    """PNG's signature, then a ZIP archive: a file that two programs read two ways."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("payload.html", "<script>alert(1)</script>")
    return b"\x89PNG\r\n\x1a\n" + out.getvalue()


HTML_TAIL = b"<html><script>alert('polyglot')</script></html>"

# name -> (file name, bytes): each must be refused wherever an image is accepted.
REFUSED_IMAGES = {
    "truncated-png": ("scan.png", png((64, 64))[:60]),
    "truncated-jpeg": ("scan.jpg", jpeg((64, 64))[:200]),
    "bomb-100000x100000": ("bomb.png", png_claiming(100_000, 100_000)),
    "gif-with-html": ("scan.gif", gif() + HTML_TAIL),
    "zip-with-png-header": ("scan.png", zip_with_png_header()),
    "text-named-png": ("scan.png", b"Patient: Jane Doe\nNot an image at all.\n"),
    "html-named-png": ("scan.png", b"<!doctype html><script>alert(1)</script>"),
    "empty": ("scan.png", b""),
}


def data_uri(raw: bytes, kind: str = "image/png") -> str:
    return f"data:{kind};base64,{base64.b64encode(raw).decode()}"


def stored_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


@pytest.fixture
def session(user, engine, medserver_settings) -> ChatSession:
    # A budget no corpus can spend: what is under test here is refusal, not rate.
    medserver_settings(rate_limit="10000/minute", default_temperature=0.0)
    return services.session_create(owner=user, model_name=engine.state.model)


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def api_key(user) -> str:
    return api_tokens.api_token_create(owner=user, name="hostile")[1]


@pytest.fixture
def api(client, api_key, session):
    class Api:
        def post(self, path, data, content_type="application/json"):
            return client.post(
                path, data, content_type=content_type, HTTP_AUTHORIZATION=f"Bearer {api_key}"
            )

    return Api()


def assert_nothing_saved(settings) -> None:
    assert Attachment.objects.count() == 0
    assert Message.objects.count() == 0
    assert stored_files(settings) == []


def assert_still_serving(client) -> None:
    health = client.get("/api/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ready"


def api_error(response) -> str:
    """The error's message; the response must be a JSON refusal in OpenAI's shape."""
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    error = response.json()["error"]
    assert error["message"] and error["type"], error
    return error["message"]


# --- images through the page's upload view

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("case", REFUSED_IMAGES)
def test_upload_view_refuses_hostile_image_with_a_message_and_stores_nothing(
    signed_in, session, settings, case
):
    name, raw = REFUSED_IMAGES[case]
    response = signed_in.post(
        f"/chat/{session.pk}/attachments/",
        {"images": SimpleUploadedFile(name, raw, content_type="image/png")},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert 'role="alert"' in page
    assert any(reason in page for reason in IMAGE_REFUSAL), page
    assert 'name="attachments"' not in page  # no thumbnail, no id to send
    assert_nothing_saved(settings)
    assert_still_serving(signed_in)


def test_png_with_html_appended_is_stored_as_pixels_only(signed_in, session, user, settings):
    """A valid PNG carrying a page after its end: the pixels are kept, the page is not."""
    response = signed_in.post(
        f"/chat/{session.pk}/attachments/",
        {"images": SimpleUploadedFile("scan.png", png() + HTML_TAIL, content_type="image/png")},
    )
    assert response.status_code == 200
    attachment = Attachment.objects.get(owner=user)
    stored = Path(attachment.file.path).read_bytes()
    assert b"<script" not in stored and b"<html" not in stored
    served = signed_in.get(f"/attachments/{attachment.pk}/")
    assert served["Content-Type"] == "image/png"
    assert served["X-Content-Type-Options"] == "nosniff"
    assert b"<script" not in b"".join(served.streaming_content)


# --- images through the API


@pytest.mark.parametrize("case", REFUSED_IMAGES)
def test_api_analyze_refuses_hostile_image_with_a_json_error(api, settings, case):
    name, raw = REFUSED_IMAGES[case]
    response = api.post(
        "/api/analyze",
        {"prompt": "Describe", "images": SimpleUploadedFile(name, raw, content_type="image/png")},
        content_type=MULTIPART_CONTENT,
    )
    assert response.status_code in (413, 415, 422), response.content[:300]
    assert any(reason in api_error(response) for reason in IMAGE_REFUSAL)
    assert_nothing_saved(settings)


@pytest.mark.parametrize("case", REFUSED_IMAGES)
def test_api_chat_refuses_hostile_image_data_uri_with_a_json_error(api, client, settings, case):
    _, raw = REFUSED_IMAGES[case]
    body = {"messages": [{"role": "user", "content": "x", "image_data": [data_uri(raw)]}]}
    response = api.post("/api/chat", body)
    assert response.status_code in (413, 415, 422), response.content[:300]
    assert any(reason in api_error(response) for reason in IMAGE_REFUSAL)
    assert_nothing_saved(settings)
    assert_still_serving(client)


def test_api_chat_reads_an_image_by_its_content_not_its_label(api):
    """A PNG labelled image/jpeg is decoded as what it is; the label decides nothing."""
    body = {
        "messages": [
            {"role": "user", "content": "x", "image_data": [data_uri(png(), "image/jpeg")]}
        ],
        "max_tokens": 4,
    }
    assert api.post("/api/chat", body).status_code == 200


@pytest.mark.parametrize(
    ("uri", "status", "says"),
    [
        (data_uri(png(), "text/html"), 415, "PNG, JPEG or WebP"),
        (data_uri(png(), "image/svg+xml"), 415, "PNG, JPEG or WebP"),
        ("data:image/png;base64,@@not base64@@", 422, "not valid base64"),
        ("https://example.org/xray.png", 422, "does not fetch URLs"),
        ("file:///etc/passwd", 422, "does not fetch URLs"),
        (12345, 422, "data URI string"),
    ],
)
def test_api_chat_refuses_image_data_that_is_not_an_inline_image(api, settings, uri, status, says):
    body = {"messages": [{"role": "user", "content": "x", "image_data": [uri]}]}
    response = api.post("/api/chat", body)
    assert response.status_code == status
    assert says in api_error(response)
    assert_nothing_saved(settings)


def test_api_analyze_refuses_a_body_that_is_not_multipart(api):
    response = api.post("/api/analyze", "prompt=x", content_type="text/plain")
    assert response.status_code == 415
    assert "multipart/form-data" in api_error(response)


# --- malformed and hostile JSON


def test_api_chat_refuses_json_nested_ten_thousand_levels(api, client, settings):
    body = '{"messages": ' + "[" * 10_000 + "]" * 10_000 + "}"
    response = api.post("/api/chat", body)
    assert response.status_code == 400, response.content[:300]
    assert "not valid JSON" in api_error(response)
    assert_nothing_saved(settings)
    assert_still_serving(client)


def test_api_chat_refuses_a_five_megabyte_message_by_the_text_limit(api, client, settings):
    body = {"messages": [{"role": "user", "content": "A" * (5 * MB)}]}
    response = api.post("/api/chat", body)
    assert response.status_code == 413
    assert "the limit is 50,000" in api_error(response)
    assert_nothing_saved(settings)
    assert_still_serving(client)


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("{", "not valid JSON"),
        ("{'messages': []}", "not valid JSON"),
        ('{"messages": [] /* comment */}', "not valid JSON"),
        (b'{"messages": "\xff\xfe"}', "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('"messages"', "must be a JSON object"),
        ("null", "must be a JSON object"),
        ("12", "must be a JSON object"),
    ],
)
def test_api_chat_refuses_unreadable_json(api, settings, raw, says):
    response = api.post("/api/chat", raw)
    assert response.status_code == 400
    assert says in api_error(response)
    assert_nothing_saved(settings)


NAN_ACCEPTED = ()  # refused since the parser checks numbers are finite


@pytest.mark.parametrize("field", ["temperature", "top_p"])
@pytest.mark.parametrize(
    "literal", [pytest.param("NaN", marks=NAN_ACCEPTED), "Infinity", "-Infinity"]
)
def test_api_chat_refuses_non_finite_numbers(api, client, field, literal):
    """JSON has no NaN or Infinity; Python's parser takes them, so the range check must."""
    body = '{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, '
    body += f'"{field}": {literal}}}'
    response = api.post("/api/chat", body)
    assert response.status_code in (400, 422), response.content[:300]
    assert field in api_error(response)
    assert_still_serving(client)


def test_api_chat_refuses_non_finite_max_tokens(api):
    body = '{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": NaN}'
    response = api.post("/api/chat", body)
    assert response.status_code == 422
    assert "max_tokens must be a whole number" in api_error(response)


def test_api_chat_with_duplicate_keys_takes_the_last(api):
    good = '[{"role": "user", "content": "Hi"}]'
    response = api.post("/api/chat", '{"messages": ' + good + ', "messages": "x"}')
    assert response.status_code == 422
    assert "messages must be a list" in api_error(response)
    response = api.post("/api/chat", '{"messages": "x", "max_tokens": 4, "messages": ' + good + "}")
    assert response.status_code == 200


HELLO = [{"role": "user", "content": "Hi"}]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({}, "messages must be a list"),
        ({"messages": None}, "messages must be a list"),
        ({"messages": "Hi"}, "messages must be a list"),
        ({"messages": {"role": "user", "content": "Hi"}}, "messages must be a list"),
        ({"messages": []}, "at least one message"),
        ({"messages": ["Hi"]}, "messages[0] must be an object"),
        ({"messages": [None]}, "messages[0] must be an object"),
        ({"messages": [[{"role": "user"}]]}, "messages[0] must be an object"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content must be a string"),
        ({"messages": [{"role": "user", "content": None}]}, "content must be a string"),
        ({"messages": [{"role": "user", "content": ["Hi"]}]}, "content must be a string"),
        ({"messages": [{"role": "user", "content": {"text": "Hi"}}]}, "content must be a string"),
        ({"messages": [{"role": "user", "content": "x", "image_data": "x"}]}, "list of data URIs"),
        (
            {"messages": [{"role": "user", "content": "x", "image_data": {"url": "x"}}]},
            "list of data URIs",
        ),
        ({"messages": HELLO, "stream": "yes"}, "stream must be true or false"),
        ({"messages": HELLO, "stream": 1}, "stream must be true or false"),
        ({"messages": HELLO, "thinking": "false"}, "thinking must be true or false"),
        ({"messages": HELLO, "max_tokens": "10"}, "max_tokens must be a whole number"),
        ({"messages": HELLO, "max_tokens": 1.5}, "max_tokens must be a whole number"),
        ({"messages": HELLO, "max_tokens": True}, "max_tokens must be a whole number"),
        ({"messages": HELLO, "max_tokens": 0}, "max_tokens must be from"),
        ({"messages": HELLO, "max_tokens": -1}, "max_tokens must be from"),
        ({"messages": HELLO, "max_tokens": 10**30}, "max_tokens must be from"),
        ({"messages": HELLO, "temperature": "hot"}, "temperature must be a number"),
        ({"messages": HELLO, "temperature": [0.5]}, "temperature must be a number"),
        ({"messages": HELLO, "temperature": 99}, "temperature must be from"),
        ({"messages": HELLO, "top_p": 0}, "top_p must be above"),
        ({"messages": HELLO, "top_p": {}}, "top_p must be a number"),
        ({"messages": HELLO, "stop": 5}, "stop must be a string"),
        ({"messages": HELLO, "stop": [""]}, "stop must be a string"),
        ({"messages": HELLO, "stop": ["a", "b", "c", "d", "e"]}, "stop must be a string"),
        ({"messages": HELLO, "ignore_eos": "no"}, "ignore_eos must be true or false"),
    ],
)
def test_api_chat_refuses_wrong_types_naming_the_field(api, settings, body, says):
    response = api.post("/api/chat", body)
    assert response.status_code == 422, response.content[:300]
    assert says in api_error(response)
    assert_nothing_saved(settings)


def user_says(text: str = "Hi") -> dict:
    return {"role": "user", "content": text}


@pytest.mark.parametrize(
    ("messages", "says"),
    [
        ([{"role": "root", "content": "Hi"}], "role must be system, user or assistant"),
        ([{"role": "", "content": "Hi"}], "role must be system, user or assistant"),
        ([{"role": "User", "content": "Hi"}], "role must be system, user or assistant"),
        ([{"role": "tool", "content": "Hi"}], "role must be system, user or assistant"),
        ([{"role": "developer", "content": "Hi"}], "role must be system, user or assistant"),
        ([{"role": None, "content": "Hi"}], "role must be system, user or assistant"),
        ([{"role": ["user"], "content": "Hi"}], "role must be system, user or assistant"),
        ([{"content": "Hi"}], "role must be system, user or assistant"),
        ([user_says(), {"role": "system", "content": "Obey"}, user_says()], "first message"),
        ([{"role": "system", "content": "a"}, {"role": "system", "content": "b"}], "first"),
        ([{"role": "assistant", "content": "Sure"}], "alternate"),
        ([user_says(), user_says()], "alternate"),
        ([user_says(), {"role": "assistant", "content": "Ok"}], "last message must be"),
        pytest.param(
            [{"role": "system", "content": "Obey"}],
            "last message must be",
        ),
        (
            [
                user_says(),
                {"role": "assistant", "content": "Ok", "image_data": [data_uri(png())]},
                user_says(),
            ],
            "only user messages can carry images",
        ),
    ],
)
def test_api_chat_refuses_bad_roles(api, settings, messages, says):
    response = api.post("/api/chat", {"messages": messages})
    assert response.status_code == 422, response.content[:300]
    assert says in api_error(response)
    assert_nothing_saved(settings)


def test_api_refuses_a_declared_body_over_the_limit_before_reading_it(api, medserver_settings):
    limits = medserver_settings(max_payload_mb=1, max_image_count=1, max_text_length=1000)
    response = api.post(
        "/api/chat",
        json.dumps({"messages": HELLO, "pad": "x" * (limits.max_request_bytes + 1)}),
    )
    assert response.status_code == 413
    assert "larger than" in api_error(response)


# --- the chat socket


HOSTILE_FRAMES = {
    "not-json": "{not json",
    "json-array": '["send", "Hi"]',
    "json-string": '"send"',
    "json-null": "null",
    "nan": '{"action": "send", "content": NaN}',
    "unknown-action": '{"action": "drop_tables"}',
    "action-list": '{"action": ["send"], "content": "Hi"}',
    "content-number": '{"action": "send", "content": 5}',
    "content-object": '{"action": "send", "content": {"text": "Hi"}}',
    "content-null": '{"action": "send", "content": null}',
    "attachments-object": '{"action": "send", "content": "Hi", "attachments": {"a": 1}}',
    "attachments-bad-uuid": '{"action": "send", "content": "Hi", "attachments": ["../../etc"]}',
    "attachments-unknown": (
        '{"action": "send", "content": "Hi", '
        '"attachments": ["00000000-0000-0000-0000-000000000000"]}'
    ),
    "five-megabytes": json.dumps({"action": "send", "content": "A" * (5 * MB)}),
    "empty-content": '{"action": "send", "content": "   "}',
    "edit-no-id": '{"action": "edit", "text": "Hi"}',
    "edit-id-text": '{"action": "edit", "message_id": "abc", "text": "Hi"}',
    "edit-id-list": '{"action": "edit", "message_id": [1], "text": "Hi"}',
    "edit-id-huge": '{"action": "edit", "message_id": 99999999999999999999999, "text": "Hi"}',
    "regenerate-id-object": '{"action": "regenerate", "message_id": {"id": 1}}',
    "regenerate-missing": '{"action": "regenerate", "message_id": 424242}',
}


@database_sync_to_async
def _counts() -> tuple[int, int]:
    return Message.objects.count(), Attachment.objects.count()


DEEP_FRAME = '{"action": "send", "content": ' + "[" * 10_000 + "]" * 10_000 + "}"
SOCKET_CASES = [
    *HOSTILE_FRAMES,
    pytest.param(
        "deep-nesting",
    ),
]
HOSTILE_FRAMES["deep-nesting"] = DEEP_FRAME


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("case", SOCKET_CASES)
async def test_socket_refuses_hostile_frame_with_a_message_and_stays_open(
    session, user, async_client, case
):
    communicator, connected, _ = await open_socket(session, user)
    assert connected
    await communicator.send_to(text_data=HOSTILE_FRAMES[case])
    reply = await communicator.receive_from(timeout=3)
    assert 'role="alert"' in reply, reply
    assert await _counts() == (0, 0)
    # The same socket still works afterwards: the consumer did not die on it.
    await communicator.send_json_to({"action": "stop"})
    await communicator.send_to(text_data='{"action": "nonsense"}')
    assert "not understood" in await communicator.receive_from(timeout=3)
    await communicator.disconnect()
    assert (await async_client.get("/api/health")).status_code == 200


@pytest.mark.django_db(transaction=True)
async def test_socket_survives_a_binary_frame(session, user):
    communicator, connected, _ = await open_socket(session, user)
    assert connected
    await communicator.send_to(bytes_data=png() + HTML_TAIL)
    reply = await communicator.receive_from(timeout=3)
    assert "not understood" in reply, reply
    assert await _counts() == (0, 0)
    await communicator.disconnect()
