"""OpenAI parameters MedServer cannot honour are refused with a 400 naming them;
the ones front ends send on every turn are accepted and do nothing."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

HELLO = {
    "model": "medserver-demo",
    "messages": [{"role": "user", "content": "Hi"}],
    "max_tokens": 4,
}


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("n", 2),
        ("n", True),
        ("logprobs", True),
        ("top_logprobs", 3),
        ("seed", 7),
        ("presence_penalty", 0.5),
        ("frequency_penalty", -1),
        ("logit_bias", {"1234": 5}),
        ("response_format", {"type": "json_object"}),
        ("response_format", {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}),
        ("tool_choice", "required"),
        ("tool_choice", {"type": "function", "function": {"name": "lookup"}}),
        ("function_call", {"name": "lookup"}),
        ("modalities", ["text", "audio"]),
        ("audio", {"voice": "alloy", "format": "wav"}),
        ("prediction", {"type": "content", "content": "x"}),
        ("min_p", 0.05),
        ("repetition_penalty", 1.2),
        ("min_tokens", 10),
        ("best_of", 3),
        ("use_beam_search", True),
        ("guided_json", {"type": "object"}),
        ("guided_choice", ["yes", "no"]),
        ("structured_outputs", {"regex": "[0-9]+"}),
    ],
)
def test_an_unsupported_parameter_is_refused_naming_it(api, param, value):
    response = api.post("/v1/chat/completions", {**HELLO, param: value})
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["param"] == param
    assert error["code"] == "unsupported_parameter"
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("previous_response_id", "resp_123"),
        ("background", True),
        ("text", {"format": {"type": "json_object"}}),
        ("tool_choice", "required"),
    ],
)
def test_the_responses_api_refuses_what_it_cannot_honour(api, param, value):
    body = {"model": "medserver-demo", "input": "Hi", "max_output_tokens": 4, param: value}
    response = api.post("/v1/responses", body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["param"] == param


def test_what_front_ends_send_every_turn_is_accepted(api):
    tools = [{"type": "function", "function": {"name": "web_search", "parameters": {}}}]
    for extra in [
        {"tools": tools},
        {"tools": tools, "tool_choice": "auto"},
        {"tools": tools, "tool_choice": "none", "parallel_tool_calls": True},
        {"n": 1, "logprobs": False, "presence_penalty": 0, "frequency_penalty": 0.0},
        {"response_format": {"type": "text"}, "store": False, "metadata": {"task": "title"}},
        {"user": "someone", "service_tier": "auto", "logit_bias": {}, "seed": None},
        {"top_k": -1, "repetition_penalty": 1.0, "min_p": 0, "best_of": 1},
    ]:
        response = api.post("/v1/chat/completions", {**HELLO, **extra})
        assert response.status_code == 200, (extra, response.content)
        message = response.json()["choices"][0]["message"]
        assert "tool_calls" not in message
