"""What the clinic's IT watches: /metrics read by Prometheus's own parser, JSON logs,
quiet health checks while the model loads, and honest status lines."""

from __future__ import annotations

import http.client
import json
import time
from http import HTTPStatus
from urllib.parse import urlparse

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.server import free_port, start_server

METRICS_TOKEN = "metrics-secret-for-tests"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    listen_port = free_port()
    running = start_server(
        tmp_path_factory.mktemp("ops-server"),
        "--metrics-token",
        METRICS_TOKEN,
        "--metrics-listen",
        f"127.0.0.1:{listen_port}",
        "--log-format",
        "json",
        "--rate-limit",
        "1000/minute",
        wait_for="loading",  # so that health checks meet the model loading
    )
    running.metrics_listen = f"http://127.0.0.1:{listen_port}/metrics"
    deadline = time.monotonic() + 90
    while running.health()["status"] != "ready" and time.monotonic() < deadline:
        time.sleep(0.2)
    running.api_key = running.admin_token("it")
    yield running
    running.stop()


def _families(text: str) -> dict:
    return {family.name: family for family in text_string_to_metric_families(text)}


def _value(family, **labels) -> float:
    return sum(
        s.value
        for s in family.samples
        if all(s.labels.get(k) == v for k, v in labels.items()) and not s.name.endswith("_created")
    )


def test_metrics_show_the_answers_given(server):
    headers = {"Authorization": f"Bearer {server.api_key}"}
    body = {"model": "medserver-demo", "messages": [{"role": "user", "content": "Hi"}]}
    for _ in range(3):
        answer = httpx.post(f"{server.url}/v1/chat/completions", json=body, headers=headers)
        assert answer.status_code == 200
    stream = httpx.post(f"{server.url}/api/chat", json={**body, "stream": True}, headers=headers)
    assert stream.status_code == 200
    scraped = httpx.get(
        f"{server.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain; version=")
    families = _families(scraped.text)
    route = "/v1/chat/completions"
    requests = families["medserver_http_requests"]
    assert _value(requests, route=route, method="POST", status="200") == 3
    assert _value(requests, route="/api/chat", status="200") == 1
    engine = "transformers"
    assert _value(families["medserver_answers"], engine=engine) == 4
    ttft = families["medserver_time_to_first_token_seconds"]
    count = [s for s in ttft.samples if s.name.endswith("_count") and s.labels["engine"] == engine]
    assert count[0].value == 4
    assert "medserver_tokens_per_second" in families
    assert _value(families["medserver_queue_depth"]) == 0
    assert _value(families["medserver_streams_running"]) == 0
    assert _value(families["medserver_model_ready"], status="ready") == 1
    assert _value(families["medserver_engine_fallbacks"]) == 0
    assert "process_resident_memory_bytes" in families


def test_metrics_need_the_token_or_the_listen_address(server):
    assert httpx.get(f"{server.url}/metrics").status_code == 401
    wrong = httpx.get(
        f"{server.url}/metrics", headers={"Authorization": f"Bearer {server.api_key}"}
    )
    assert wrong.status_code == 401
    assert "medserver_queue_depth" in httpx.get(server.metrics_listen).text


def test_logs_are_json_and_loading_health_checks_are_not_errors(server):
    lines = [line for line in server.output if line.startswith("{")]
    entries = [json.loads(line) for line in lines]
    assert entries and all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    health = [e for e in entries if "/api/health" in e["message"]]
    assert health, "the first health checks met the model loading"
    assert {e["level"] for e in health} == {"INFO"}
    assert not [e for e in entries if e["level"] in ("ERROR", "CRITICAL")]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/api/chat", b"{}", 422),
        ("GET", "/api/chat", None, 405),
        ("POST", "/v1/chat/completions", b"{}", 404),
    ],
)
def test_status_lines_carry_real_reason_phrases(server, method, path, body, status):
    # Python's own phrase ("Unprocessable Entity", "Unprocessable Content" from 3.13).
    phrase = HTTPStatus(status).phrase
    address = urlparse(server.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    headers = {"Authorization": f"Bearer {server.api_key}", "Content-Type": "application/json"}
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    assert (response.status, response.reason) == (status, phrase)
    if status == 405:
        assert response.getheader("Allow") == "POST"
    connection.close()


def test_a_429_status_line_says_too_many_requests(server):
    address = urlparse(server.url)
    key = server.manage("create_api_token", "it").strip().splitlines()[-1]
    body = json.dumps({"messages": [{"role": "user", "content": "x"}], "stream": True})
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    first = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    first.request("POST", "/api/chat", body=body, headers=headers)
    streaming = first.getresponse()  # holds the user's only stream
    assert streaming.status == 200
    second = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    second.request("POST", "/api/chat", body=body, headers=headers)
    refused = second.getresponse()
    assert (refused.status, refused.reason) == (429, "Too Many Requests")
    assert refused.getheader("Retry-After") == "1"
    first.close()
    second.close()


def test_a_broken_multipart_body_reaches_django_and_gets_a_json_error(server):
    headers = {
        "Authorization": f"Bearer {server.api_key}",
        "Content-Type": "multipart/form-data; boundary=c637e12e2b1a998d80d1b087531af51c",
    }
    body = b"--c637e12e2b1a998d80d1b087531af51c--\r\n"
    response = httpx.post(f"{server.url}/api/analyze", content=body, headers=headers)
    assert 400 <= response.status_code < 500
    assert response.json()["error"]["message"]
