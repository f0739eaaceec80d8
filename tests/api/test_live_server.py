"""The API against a live `medserver -m demo`, through the clients other tools use."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import time

import httpx
import openai
import pytest
from httpx_sse import connect_sse
from PIL import Image

from tests.dicom_files import IDENTIFYING_TEXT, PATIENT_TAGS, ct_series, zip_of
from tests.support.server import start_server


@pytest.fixture(scope="module")
def server(demo_server):
    """The session's shared `medserver -m demo`, with an API token of the user pacs."""
    running = dataclasses.replace(demo_server)
    running.api_key = running.admin_token("pacs")
    return running


@pytest.fixture
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=server.api_key, max_retries=0)


def png_data_uri() -> str:
    out = io.BytesIO()
    Image.new("RGB", (96, 96), color=(80, 80, 80)).save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def test_openai_package_lists_the_served_model(client):
    assert [model.id for model in client.models.list()] == ["medserver-demo"]


def test_openai_package_non_streaming(client):
    completion = client.chat.completions.create(
        model="medserver-demo",
        messages=[
            {"role": "system", "content": "You are a radiologist."},
            {"role": "user", "content": "Signs of pneumothorax?"},
        ],
        max_tokens=10,
    )
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert completion.usage.completion_tokens <= 10
    assert completion.model == "medserver-demo"


def test_openai_package_streaming_with_an_image(client):
    stream = client.chat.completions.create(
        model="medserver-demo",
        stream=True,
        stream_options={"include_usage": True},
        max_completion_tokens=12,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe this radiograph."},
                    {"type": "image_url", "image_url": {"url": png_data_uri()}},
                ],
            }
        ],
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert text
    assert finishes[-1] in ("stop", "length")
    assert chunks[-1].usage.completion_tokens <= 12
    assert chunks[-1].usage.prompt_tokens > 20  # the image's tokens are in the prompt


def test_openai_package_with_a_zipped_ct_series(client):
    raws = ct_series(4, **PATIENT_TAGS)
    series = zip_of({f"{PATIENT_TAGS['PatientName']}/IM{n}": raw for n, raw in enumerate(raws)})
    uri = "data:application/zip;base64," + base64.b64encode(series).decode()

    def ask(url: str):
        return client.chat.completions.create(
            model="medserver-demo",
            max_tokens=8,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Any nodules?"},
                        {"type": "image_url", "image_url": {"url": url}},
                    ],
                }
            ],
            extra_body={"dicom_window": "lung"},
        )

    completion = ask(uri)
    assert completion.choices[0].message.content
    assert completion.usage.prompt_tokens > 200  # four slices, each followed by its label
    shown = completion.model_dump_json().lower()
    assert not [text for text in IDENTIFYING_TEXT if text.lower() in shown]
    broken = "data:application/dicom;base64," + base64.b64encode(b"not DICOM").decode()
    with pytest.raises(openai.UnprocessableEntityError, match="could not be read as DICOM"):
        ask(broken)


def test_openai_errors_arrive_as_openai_exceptions(client, server):
    with pytest.raises(openai.NotFoundError, match="not served here"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.UnprocessableEntityError, match="alternate"):
        client.chat.completions.create(
            model="medserver-demo",
            messages=[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
        )
    stranger = openai.OpenAI(base_url=f"{server.url}/v1", api_key="ms_wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        stranger.models.list()


def test_sse_frames_parse_with_an_sse_client(server):
    body = {"messages": [{"role": "user", "content": "Hello"}], "stream": True, "max_tokens": 10}
    headers = {"Authorization": f"Bearer {server.api_key}"}
    with httpx.Client(timeout=30) as http:
        with connect_sse(http, "POST", f"{server.url}/api/chat", json=body, headers=headers) as sse:
            assert sse.response.headers["content-type"].startswith("text/event-stream")
            data = [event.data for event in sse.iter_sse()]
    assert data[-1] == "[DONE]"
    frames = [json.loads(d) for d in data[:-1]]
    assert frames[-1]["type"] == "done"
    assert frames[-1]["usage"]["completion_tokens"] <= 10
    assert all(f["type"] in ("answer", "thinking") for f in frames[:-1])


def test_a_client_that_disconnects_mid_stream_frees_its_slot_at_once(server):
    headers = {"Authorization": f"Bearer {server.api_key}"}
    long_answer = {
        "messages": [{"role": "user", "content": "Write a long discharge summary."}],
        "stream": True,
        "max_tokens": 4000,
        "ignore_eos": True,  # it would still be writing long after the test
    }
    short = {"messages": [{"role": "user", "content": "Quick one"}], "max_tokens": 4}
    with httpx.Client(timeout=30) as http:
        with http.stream("POST", f"{server.url}/api/chat", json=long_answer, headers=headers) as r:
            lines = r.iter_lines()  # kept: dropping it would close the stream
            assert next(lines).startswith("data: ")  # the answer is streaming
            # While it streams, the user's only slot (--max-user-streams 1) is taken.
            busy = http.post(f"{server.url}/api/chat", json=short, headers=headers)
            assert busy.status_code == 429
            assert int(busy.headers["Retry-After"]) > 0
        # Leaving the block closes the connection mid-stream.
        deadline = time.monotonic() + 2
        while True:
            again = http.post(f"{server.url}/api/chat", json=short, headers=headers)
            if again.status_code != 429 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert again.status_code == 200


@pytest.mark.parametrize(
    ("path", "content", "content_type", "status"),
    [
        ("/api/chat", b"{not json", "application/json", 400),
        ("/api/chat", b'{"messages": [{"role": "user", "content": "x"}]}', "text/plain", 415),
        ("/api/chat", b'{"messages": [{"role": "user"}], "top_p": 7}', "application/json", 422),
        ("/api/nothing-here", b"{}", "application/json", 404),
    ],
)
def test_refusals_over_the_wire(server, path, content, content_type, status):
    headers = {"Authorization": f"Bearer {server.api_key}", "Content-Type": content_type}
    response = httpx.post(f"{server.url}{path}", content=content, headers=headers)
    assert response.status_code == status
    assert response.json()["error"]["message"]


def test_an_oversized_body_is_refused_by_its_declared_length(server):
    headers = {"Authorization": f"Bearer {server.api_key}", "Content-Type": "application/json"}
    body = b'{"messages": [{"role": "user", "content": "' + b"x" * (300 * 1024 * 1024) + b'"}]}'
    response = httpx.post(f"{server.url}/api/chat", content=body, headers=headers, timeout=60)
    assert response.status_code == 413
    assert "larger than" in response.json()["error"]["message"]


def test_a_model_that_cannot_load_gives_503_with_a_reason(tmp_path):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "not-a-model"}))
    server = start_server(tmp_path / "data", model=str(broken), wait_for="error")
    try:
        server.create_user("ops")
        key = server.manage("create_api_token", "ops").strip().splitlines()[-1]
        health = server.health()
        assert health["status"] == "error" and health["reason"]
        response = httpx.post(
            f"{server.url}/api/chat",
            json={"messages": [{"role": "user", "content": "x"}]},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 503
        assert response.headers["Retry-After"]
        assert "not available" in response.json()["error"]["message"]
    finally:
        server.stop()
