"""The OpenAI-compatible API: /v1/models and /v1/chat/completions.

Clients built for OpenAI (the `openai` package, chat front ends) work with
only `base_url` and `api_key` set. Thinking comes back as `reasoning` and as
`reasoning_content` (vLLM's newer and older names; clients read either).
Images come as `image_url` data URIs; DICOM files and zips of them as
`image_url` data URIs too (application/dicom, application/zip) or as `file`
parts with their file_data, and `dicom_window` (an extra field) picks the CT
window.
"""

from __future__ import annotations

import time
import uuid

from asgiref.sync import sync_to_async
from django.http import JsonResponse

from api import parsing
from api.auth import api_endpoint
from api.generation import Generation, failure_error, start_generation, usage
from api.openai_protocol import OpenAIChatRequest
from api.sse import EventStreamResponse, sse_frame
from chat import serving
from inference.engine import Delta, Failed, Finished

# OpenAI knows only these; a loop the server cut off reads as a stop.
_FINISH_REASONS = {"stop": "stop", "length": "length", "cancelled": "stop", "repetition": "stop"}


def _served():
    return serving.served_model()


@api_endpoint("GET")
async def list_models(request) -> JsonResponse:
    spec = _served()
    model = {"id": spec.api_id, "object": "model", "created": 0, "owned_by": "medserver"}
    return JsonResponse({"object": "list", "data": [model]})


@api_endpoint("POST", generates=True)
async def chat_completions(request):
    body = OpenAIChatRequest.of(await parsing.read_json_off_loop(request))
    call = await sync_to_async(body.to_chat_call, thread_sensitive=False)(request)
    generation = await start_generation(request, call)
    completion = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "created": int(time.time()),
        "model": body.model,
    }
    if call.stream:
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        frames = _chunks(generation, completion, include_usage)
        return EventStreamResponse(frames, on_close=generation.close)
    answer = await generation.answer()
    message = {"role": "assistant", "content": answer.content}
    if answer.thinking:
        message["reasoning"] = message["reasoning_content"] = answer.thinking
    return JsonResponse(
        {
            **completion,
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": _FINISH_REASONS[answer.finished.reason],
                }
            ],
            "usage": usage(answer.finished),
            "provenance": generation.provenance,
        }
    )


async def _chunks(generation: Generation, completion: dict, include_usage: bool):
    def chunk(delta: dict, finish_reason: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return sse_frame({**completion, "object": "chat.completion.chunk", "choices": [choice]})

    yield chunk({"role": "assistant", "content": ""})
    async for event in generation.events():
        if isinstance(event, Delta):
            if event.kind == "thinking":
                yield chunk({"reasoning": event.text, "reasoning_content": event.text})
            else:
                yield chunk({"content": event.text})
        elif isinstance(event, Finished):
            yield chunk({}, _FINISH_REASONS[event.reason])
            if include_usage:
                yield sse_frame(
                    {
                        **completion,
                        "object": "chat.completion.chunk",
                        "choices": [],
                        "usage": usage(event),
                    }
                )
        elif isinstance(event, Failed):
            yield sse_frame(failure_error(event).body())
    yield sse_frame("[DONE]")
