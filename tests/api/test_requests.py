"""The JSON API in-process: auth, every refusal and its status, and real answers.

Requests go through Django's full stack (middleware, URLs, async views) and
the real engine worker on the demo model.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.test import Client
from django.test.client import MULTIPART_CONTENT

from api import tokens as api_tokens
from api.models import ApiToken
from tests.support.api import data_uri, error_of, png_bytes
from tests.support.sse import read_events

pytestmark = pytest.mark.django_db

HELLO = {"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 8}


def with_image(uri: str) -> dict:
    return {"messages": [{"role": "user", "content": "x", "image_data": [uri]}]}


# --- authentication


def test_health_needs_no_auth_but_everything_else_does(client, engine):
    assert client.get("/api/health").status_code == 200
    for method, path in [
        ("get", "/api/models"),
        ("get", "/api/model-info"),
        ("get", "/api/schema"),
        ("post", "/api/chat"),
        ("post", "/api/analyze"),
        ("get", "/v1/models"),
        ("post", "/v1/chat/completions"),
    ]:
        response = getattr(client, method)(path)
        assert response.status_code == 401, path
        assert "API token" in error_of(response)["message"]
        assert error_of(response)["type"] == "authentication_error"


def test_a_wrong_or_revoked_token_is_refused(client, user, engine):
    token, key = api_tokens.api_token_create(owner=user, name="old")
    assert client.get("/api/models", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200
    api_tokens.api_token_revoke(owner=user, token_id=token.pk)
    for header in (f"Bearer {key}", "Bearer ms_made_up", f"Token {key}", "Bearer "):
        response = client.get("/api/models", HTTP_AUTHORIZATION=header)
        assert response.status_code == 401, header


def test_a_disabled_users_token_stops_working(client, user, api_key, engine):
    user.is_active = False
    user.save()
    assert client.get("/api/models", HTTP_AUTHORIZATION=f"Bearer {api_key}").status_code == 401


def test_token_use_is_recorded(api, user):
    api.get("/api/models")
    assert ApiToken.objects.get(owner=user).last_used_at is not None


def test_a_browser_session_works_and_needs_csrf_for_posts(user, engine):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    assert browser.get("/api/model-info").status_code == 200
    refused = browser.post("/api/chat", HELLO, content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in error_of(refused)["message"]
    browser.get("/", follow=True)  # the chat page sets the CSRF cookie
    token = browser.cookies["csrftoken"].value
    allowed = browser.post(
        "/api/chat", HELLO, content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert allowed.status_code == 200


def test_create_api_token_command_prints_the_token_last(user, capsys, client, engine):
    call_command("create_api_token", user.username, "--name", "PACS")
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert client.get("/api/models", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200
    assert ApiToken.objects.get(owner=user).name == "PACS"


# --- the original routes


def test_models_lists_every_variant_and_the_loaded_one(api):
    models = api.get("/api/models").json()["models"]
    assert {m["key"] for m in models} == {"4", "27", "27t", "demo"}
    assert {m["id"] for m in models} >= {
        "google/medgemma-1.5-4b-it",
        "google/medgemma-27b-it",
        "google/medgemma-27b-text-it",
    }
    assert [m["key"] for m in models if m["loaded"]] == ["demo"]
    assert next(m for m in models if m["key"] == "27t")["type"] == "text"


def test_model_info_reports_engine_context_and_limits(api, medserver_settings):
    medserver_settings(max_image_count=3)
    info = api.get("/api/model-info").json()
    assert info["engine"] == "transformers"
    assert info["context_length"] == 8192
    assert info["limits"]["max_image_count"] == 3
    assert info["model"]["id"] == "medserver-demo"


def test_health_shows_hardware_only_when_asked(client, engine, medserver_settings):
    assert "gpus" not in client.get("/api/health").json()
    medserver_settings(show_hardware_stats=True)
    health = client.get("/api/health").json()
    assert health["gpus"] == []  # this machine has no NVIDIA GPU
    assert health["hardware"] == "CPU only"
    assert health["device"]["device"] == "cpu"


def test_chat_answers_with_usage_and_timings(api):
    response = api.post("/api/chat", HELLO)
    assert response.status_code == 200
    body = response.json()
    assert body["content"]
    assert body["usage"]["completion_tokens"] <= 8
    assert body["usage"]["total_tokens"] == (
        body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )
    assert body["finish_reason"] in ("stop", "length")
    assert body["timings"]["total_ms"] > 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_chat_streams_server_sent_events_ending_in_done(async_api):
    response = await async_api.post("/api/chat", {**HELLO, "stream": True})
    assert response["Content-Type"].startswith("text/event-stream")
    events = await read_events(response)
    assert events[-1] == "[DONE]"
    done = events[-2]
    assert done["type"] == "done" and done["usage"]["completion_tokens"] > 0
    deltas = [e for e in events[:-2] if e["type"] in ("answer", "thinking")]
    assert deltas and all(isinstance(e["delta"], str) for e in deltas)
    plain = (await async_api.post("/api/chat", HELLO)).json()  # greedy: same text either way
    assert "".join(e["delta"] for e in deltas if e["type"] == "answer") == plain["content"]


def test_chat_with_images_reaches_the_model(api):
    message = {"role": "user", "content": "Describe", "image_data": [data_uri(png_bytes())] * 2}
    with_images = api.post("/api/chat", {"messages": [message], "max_tokens": 4}).json()
    without = api.post("/api/chat", {"messages": [{"role": "user", "content": "Describe"}]})
    assert with_images["usage"]["prompt_tokens"] >= without.json()["usage"]["prompt_tokens"] + 8


def test_analyze_takes_a_multipart_form(api):
    form = {"prompt": "Findings?", "images": io.BytesIO(png_bytes()), "max_tokens": "6"}
    response = api.post("/api/analyze", form, content_type=MULTIPART_CONTENT)
    assert response.status_code == 200, response.content
    assert response.json()["usage"]["completion_tokens"] <= 6


def test_stop_sequence_ends_the_answer_before_it(api):
    full = api.post("/api/chat", {**HELLO, "max_tokens": 24}).json()["content"]
    marker = full[len(full) // 2 : len(full) // 2 + 3]
    assert marker.strip(), "the greedy answer should have text in the middle"
    stopped = api.post("/api/chat", {**HELLO, "max_tokens": 24, "stop": [marker]}).json()
    assert stopped["content"] == full[: full.index(marker)]
    assert stopped["finish_reason"] == "stop"


def test_ignore_eos_writes_every_token_asked_for(api):
    body = {"messages": [{"role": "user", "content": "Go on and on"}], "max_tokens": 300}
    natural = api.post("/api/chat", body).json()
    assert natural["usage"]["completion_tokens"] < 300  # greedy ends early by itself
    forced = api.post("/api/chat", {**body, "ignore_eos": True}).json()
    assert forced["usage"]["completion_tokens"] == 300
    assert forced["finish_reason"] == "length"


def test_client_sampling_is_ignored_when_the_server_forbids_it(api, medserver_settings):
    medserver_settings(allow_client_sampling_config=False)
    greedy = api.post("/api/chat", HELLO).json()["content"]
    asked_hot = api.post("/api/chat", {**HELLO, "temperature": 2.0, "top_p": 0.5}).json()
    assert asked_hot["content"] == greedy


def test_schema_describes_every_route(api):
    document = api.get("/api/schema").json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {
        "/api/health",
        "/api/models",
        "/api/model-info",
        "/api/chat",
        "/api/analyze",
        "/api/schema",
        "/v1/models",
        "/v1/chat/completions",
        "/v1/responses",
    }


def test_the_schema_and_the_checks_share_the_running_servers_limits(api, medserver_settings):
    medserver_settings(max_history_messages=3, max_model_len=1024, max_text_length=500)
    document = api.get("/api/schema").json()
    schemas = document["components"]["schemas"]
    for name in ("ChatRequest", "OpenAIChatRequest"):
        assert schemas[name]["properties"]["messages"]["maxItems"] == 3
        assert schemas[name]["properties"]["max_tokens"]["maximum"] == 1024
    analyze = document["paths"]["/api/analyze"]["post"]["requestBody"]["content"]
    assert analyze["multipart/form-data"]["schema"]["properties"]["prompt"]["maxLength"] == 500
    refused = api.post("/api/chat", {**HELLO, "max_tokens": 1025})
    assert refused.status_code == 422
    assert error_of(refused)["message"] == "max_tokens must be from 1 up to 1024."
    assert error_of(refused)["param"] == "max_tokens"
    long_prompt = {"prompt": "x" * 501, "images": io.BytesIO(png_bytes())}
    response = api.post("/api/analyze", long_prompt, content_type=MULTIPART_CONTENT)
    assert response.status_code == 413
    assert error_of(response)["message"] == "prompt is longer than 500 characters."


@pytest.mark.parametrize(
    "part",
    [
        "Hi",
        {"type": "input_text", "text": "Hi"},
        {"type": "text", "text": 5},
        {"type": "image_url"},
        {"type": "file", "file": {"file_id": "file-123"}},
    ],
)
def test_an_openai_content_part_it_cannot_read_is_refused_naming_its_message(api, part):
    message = {"role": "user", "content": [{"type": "text", "text": "Look"}, part]}
    body = {"model": "medserver-demo", "messages": [message]}
    response = api.post("/v1/chat/completions", body)
    assert response.status_code == 422, response.content
    assert error_of(response)["param"] == "messages[0]"
    assert error_of(response)["message"].startswith("messages[0].content[1] must be a text part")


# --- refusals, each with its status


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"messages": "hi"}, 422, "messages must be a list"),
        ({"messages": []}, 422, "at least one message"),
        ({"messages": [{"role": "robot", "content": "x"}]}, 422, "role must be"),
        ({"messages": [{"role": "assistant", "content": "x"}]}, 422, "should be user"),
        (
            {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]},
            422,
            "alternate",
        ),
        (
            {"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]},
            422,
            "first message may be a system",
        ),
        (
            {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},
            422,
            "last message must be from the user",
        ),
        ({"messages": [{"role": "user", "content": 42}]}, 422, "content must be a string"),
        ({**HELLO, "temperature": 3}, 422, "temperature must be"),
        ({**HELLO, "temperature": "hot"}, 422, "temperature must be a number"),
        ({**HELLO, "top_p": 0}, 422, "top_p must be above"),
        ({**HELLO, "max_tokens": 0}, 422, "max_tokens must be"),
        ({**HELLO, "max_tokens": 100000}, 422, "max_tokens must be"),
        ({**HELLO, "max_tokens": True}, 422, "max_tokens must be a whole number"),
        ({**HELLO, "stream": "yes"}, 422, "stream must be true or false"),
        ({**HELLO, "stop": ["a", "b", "c", "d", "e"]}, 422, "stop must be"),
        (
            with_image("https://x/y.png"),
            422,
            "does not fetch URLs",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "x", "image_data": ["data:image/png;base64,!!"]}
                ]
            },
            422,
            "not valid base64",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "x", "image_data": ["data:image/gif;base64,R0lG"]}
                ]
            },
            415,
            "PNG, JPEG or WebP",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "x", "image_data": [data_uri(b"not a png")]}
                ]
            },
            422,
            "could not be read",
        ),
    ],
)
def test_bad_chat_requests_are_refused_before_any_work(api, body, status, words):
    response = api.post("/api/chat", body)
    assert response.status_code == status, response.content
    assert words in error_of(response)["message"]


def test_unreadable_bodies_and_wrong_types(api):
    assert api.post("/api/chat", "{nope", content_type="application/json").status_code == 400
    assert api.post("/api/chat", "[1, 2]", content_type="application/json").status_code == 400
    assert api.post("/api/chat", "x=1", content_type="text/plain").status_code == 415
    assert api.post("/api/analyze", HELLO).status_code == 415
    assert api.get("/api/chat").status_code == 405


def test_size_limits_answer_413(api, medserver_settings):
    medserver_settings(max_text_length=100, max_payload_mb=1, max_image_count=2)
    long_text = {"messages": [{"role": "user", "content": "x" * 101}]}
    assert api.post("/api/chat", long_text).status_code == 413
    big = png_bytes()[:8] + b"\0" * (1024 * 1024 + 10)
    big_image = {"messages": [{"role": "user", "content": "x", "image_data": [data_uri(big)]}]}
    assert api.post("/api/chat", big_image).status_code == 413
    huge_body = {"messages": [{"role": "user", "content": "x" * 5_000_000}]}
    response = api.post("/api/chat", huge_body)
    assert response.status_code == 413
    assert "request body is larger" in error_of(response)["message"]


def test_counts_and_models_are_checked(api, medserver_settings):
    medserver_settings(max_image_count=1, max_history_messages=3)
    two_images = [data_uri(png_bytes())] * 2
    message = {"role": "user", "content": "x", "image_data": two_images}
    assert (
        "at most 1 per message"
        in error_of(api.post("/api/chat", {"messages": [message]}))["message"]
    )
    turns = [
        {"role": r, "content": "x"} for r in ("user", "assistant", "user", "assistant", "user")
    ]
    response = api.post("/api/chat", {"messages": turns})
    assert response.status_code == 422 and "at most 3" in error_of(response)["message"]


def test_analyze_refusals(api):
    no_prompt = {"images": io.BytesIO(png_bytes())}
    assert api.post("/api/analyze", no_prompt, content_type=MULTIPART_CONTENT).status_code == 422
    no_image = {"prompt": "Findings?"}
    assert api.post("/api/analyze", no_image, content_type=MULTIPART_CONTENT).status_code == 422
    text_file = {"prompt": "Findings?", "images": io.BytesIO(b"hello")}
    assert api.post("/api/analyze", text_file, content_type=MULTIPART_CONTENT).status_code == 422


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("multipart/form-data", b"prompt=hi"),  # no boundary
        ("multipart/form-data; boundary=", b"--\r\n"),
        ("multipart/form-data; boundary=\x00\x01", b"--\x00\x01\r\n"),
    ],
)
def test_analyze_with_an_unreadable_multipart_body_is_a_json_400(
    api, client, user, content_type, body
):
    response = api.post("/api/analyze", body, content_type=content_type)
    assert response.status_code == 400
    assert "multipart/form-data body could not be read" in error_of(response)["message"]
    # A browser session (whose CSRF check reads the body first) gets the same.
    client.force_login(user)
    client.cookies["csrftoken"] = "a" * 32
    from_page = client.post(
        "/api/analyze", body, content_type=content_type, HTTP_X_CSRFTOKEN="a" * 32
    )
    assert from_page.status_code == 400 and error_of(from_page)["message"]


def test_too_long_a_conversation_is_refused_by_the_engine_with_400(api):
    body = {"messages": [{"role": "user", "content": "€" * 9000}]}
    response = api.post("/api/chat", body)
    assert response.status_code == 400
    assert "context holds 8192" in error_of(response)["message"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_stream_the_engine_refuses_fails_before_it_starts(async_api):
    body = {"messages": [{"role": "user", "content": "€" * 9000}], "stream": True}
    response = await async_api.post("/api/chat", body)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"


def test_rate_limit_answers_429_with_retry_after(api, medserver_settings):
    # Calls that write no answer have ten times --rate-limit (chat.limits).
    medserver_settings(rate_limit="3/minute")
    statuses = [api.get("/api/models").status_code for _ in range(31)]
    assert statuses == [200] * 30 + [429]
    refused = api.get("/api/models")
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert error_of(refused)["type"] == "rate_limit_error"
    assert "the limit is 30 a minute" in error_of(refused)["message"]


def test_openai_completions_continue_a_cut_off_answer_as_vllm_does(api):
    question = {"role": "user", "content": "Causes of acute chest pain?"}
    body = {"model": "medserver-demo", "messages": [question], "max_tokens": 6}
    first = api.post("/v1/chat/completions", body).json()
    assert first["choices"][0]["finish_reason"] == "length"
    part = first["choices"][0]["message"]["content"]
    whole = api.post("/v1/chat/completions", {**body, "max_tokens": 12}).json()
    go_on = {
        **body,
        "messages": [question, {"role": "assistant", "content": part}],
        "continue_final_message": True,
        "add_generation_prompt": False,
    }
    rest = api.post("/v1/chat/completions", go_on)
    assert rest.status_code == 200, rest.content
    assert (
        part + rest.json()["choices"][0]["message"]["content"]
        == (whole["choices"][0]["message"]["content"])
    )
    refused = api.post("/v1/chat/completions", {**go_on, "add_generation_prompt": True})
    assert refused.status_code == 422
    assert "add_generation_prompt: false" in error_of(refused)["message"]
    ends_with_user = api.post("/v1/chat/completions", {**go_on, "messages": [question]})
    assert "last message must be from the assistant" in error_of(ends_with_user)["message"]


def test_continuing_an_answer_without_saying_add_generation_prompt_false_is_refused(api):
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hel"}]
    body = {"model": "medserver-demo", "messages": messages, "continue_final_message": True}
    refused = api.post("/v1/chat/completions", body)
    assert refused.status_code == 422
    assert error_of(refused)["param"] == "add_generation_prompt"
    assert "add_generation_prompt: false" in error_of(refused)["message"]
