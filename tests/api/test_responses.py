"""/v1/responses: what the `openai` package's responses.create sends, answered in the
shapes its own types describe (validated against them, not against our copy)."""

from __future__ import annotations

import asyncio
import base64
import io
import json

import pytest
from openai.types.chat import ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent
from PIL import Image
from pydantic import TypeAdapter

from api import openai as openai_api
from api import responses
from api.generation import Generation
from chat import limits
from inference.engine import ChatTurn, Delta, Finished, GenerationRequest, Sampling
from inference.handle import GenerationHandle
from tests.support.sse import read_events

pytestmark = pytest.mark.django_db

STREAM_EVENTS = TypeAdapter(ResponseStreamEvent)


def png_data_uri() -> str:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), color=(90, 90, 90)).save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def test_a_text_response_is_an_openai_response(api):
    body = {
        "model": "medserver-demo",
        "instructions": "You are a radiologist.",
        "input": "Signs of pneumothorax?",
        "max_output_tokens": 6,
    }
    answer = api.post("/v1/responses", body)
    assert answer.status_code == 200, answer.content
    response = Response.model_validate(answer.json())
    assert response.status in ("completed", "incomplete")
    assert response.output_text
    assert response.usage.output_tokens <= 6
    if response.status == "incomplete":
        assert response.incomplete_details.reason == "max_output_tokens"


def test_an_image_reaches_the_model_through_input_image(api):
    def ask(content):
        body = {"model": "demo", "input": [{"role": "user", "content": content}]}
        return api.post("/v1/responses", {**body, "max_output_tokens": 4}).json()

    with_image = ask(
        [
            {"type": "input_text", "text": "Describe this radiograph."},
            {"type": "input_image", "image_url": png_data_uri(), "detail": "auto"},
        ]
    )
    text_only = ask([{"type": "input_text", "text": "Describe this radiograph."}])
    # The demo model gives an image a handful of tokens.
    assert with_image["usage"]["input_tokens"] > text_only["usage"]["input_tokens"] + 5


@pytest.mark.parametrize(
    ("item", "status", "param"),
    [
        ({"type": "function_call_output", "call_id": "c", "output": "x"}, 400, "input[0]"),
        ({"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}, 422, "input[0]"),
        ({"role": "tool", "content": "x"}, 422, "input[0]"),
    ],
)
def test_input_it_cannot_take_is_refused_naming_it(api, item, status, param):
    body = {"model": "medserver-demo", "input": [item]}
    response = api.post("/v1/responses", body)
    assert response.status_code == status
    assert response.json()["error"]["param"] == param


@pytest.mark.django_db(transaction=True)
async def test_a_streamed_response_is_events_the_openai_types_accept(async_api):
    body = {"model": "medserver-demo", "input": "Hello", "max_output_tokens": 6, "stream": True}
    response = await async_api.post("/v1/responses", body)
    raw = b"".join([chunk async for chunk in response.streaming_content]).decode()
    frames = [f for f in raw.split("\n\n") if f.strip()]
    events = []
    for frame in frames:
        name, data = frame.split("\n")
        event = STREAM_EVENTS.validate_python(json.loads(data.removeprefix("data: ")))
        assert name == f"event: {event.type}"
        events.append(event)
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] in ("response.completed", "response.incomplete")
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert events[-1].response.output_text == text


def _handle_with(events) -> Generation:
    """A real handle, fed the events an engine that thinks would publish."""
    request = GenerationRequest((ChatTurn("user", "x"),))
    handle = GenerationHandle(request, asyncio.get_running_loop(), interval=0)
    for event in events:
        handle.publish(event)
    return Generation(handle, limits.StreamSlot(0))


THINKING = [
    Delta("thinking", "Apical lucency, "),
    Delta("thinking", "no lung markings."),
    Delta("answer", "A right "),
    Delta("answer", "pneumothorax."),
    Finished("stop", 10, 6, 0.01, 0.05),
]


async def test_thinking_streams_as_a_reasoning_item_before_the_message():
    shell = responses.response_shell("m", {}, Sampling(), {})
    frames = [f async for f in responses._events(_handle_with(THINKING), shell)]
    events = [
        STREAM_EVENTS.validate_python(json.loads(f.split("\n")[1].removeprefix("data: ")))
        for f in frames
    ]
    reasoning = "".join(e.delta for e in events if e.type == "response.reasoning_text.delta")
    assert reasoning == "Apical lucency, no lung markings."
    final = events[-1].response
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.output[0].content[0].text == reasoning
    assert final.output_text == "A right pneumothorax."


async def test_thinking_streams_in_chat_chunks_as_reasoning_and_reasoning_content():
    completion = {"id": "chatcmpl-1", "created": 0, "model": "m"}
    frames = [f async for f in openai_api._chunks(_handle_with(THINKING), completion, False)]
    chunks = [
        ChatCompletionChunk.model_validate(json.loads(f.removeprefix("data: ")))
        for f in frames
        if f != "data: [DONE]\n\n"
    ]
    deltas = [chunk.choices[0].delta.model_dump() for chunk in chunks]
    reasoning = [d["reasoning"] for d in deltas if d.get("reasoning")]
    assert reasoning == ["Apical lucency, no lung markings."]  # one delivery, merged
    assert [d["reasoning_content"] for d in deltas if d.get("reasoning")] == reasoning


@pytest.mark.django_db(transaction=True)
async def test_read_events_still_reads_chat_streams(async_api):
    # The same streams through /v1/chat/completions end in [DONE] as before.
    body = {"model": "medserver-demo", "messages": [{"role": "user", "content": "Hi"}]}
    events = await read_events(
        await async_api.post("/v1/chat/completions", {**body, "stream": True, "max_tokens": 3})
    )
    assert events[-1] == "[DONE]"
