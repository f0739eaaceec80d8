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
from django.conf import settings
from django.http import JsonResponse

from chat.api import message_images, parsing, unsupported
from chat.api.auth import api_endpoint
from chat.api.end_users import end_user_of
from chat.api.errors import ApiError
from chat.api.generation import Generation, failure_error, start_generation, usage
from chat.api.sse import EventStreamResponse, sse_frame
from imaging import dicom
from inference.engine import Delta, Failed, Finished
from inference.registry import model_spec_for

# OpenAI knows only these; a loop the server cut off reads as a stop.
_FINISH_REASONS = {"stop": "stop", "length": "length", "cancelled": "stop", "repetition": "stop"}


def _served():
    return model_spec_for(settings.MEDSERVER.model)


def check_model(model: object) -> str:
    """Return the served model's API id if `model` names it; else raise ApiError 404."""
    spec = _served()
    if model not in (spec.api_id, spec.key):
        raise ApiError(
            404,
            f"The model {model!r} is not served here; this server runs {spec.api_id!r}.",
            param="model",
            code="model_not_found",
        )
    return spec.api_id


@api_endpoint("GET")
async def list_models(request) -> JsonResponse:
    spec = _served()
    model = {"id": spec.api_id, "object": "model", "created": 0, "owned_by": "medserver"}
    return JsonResponse({"object": "list", "data": [model]})


@api_endpoint("POST", generates=True)
async def chat_completions(request):
    data = await parsing.read_json_off_loop(request)
    check_model(data.get("model"))
    spec = _served()
    unsupported.refuse(data, unsupported.CHAT_COMPLETIONS)
    messages = data.get("messages")
    if not isinstance(messages, list):
        raise ApiError(422, "messages must be a list of messages.", param="messages")
    raw_turns = [_raw_turn(message, f"messages[{i}]") for i, message in enumerate(messages)]
    stream_options = data.get("stream_options") or {}
    sampling = parsing.sampling_from(data, max_tokens_names=("max_tokens", "max_completion_tokens"))
    stream = parsing.flag(data, "stream", False)
    window = message_images.dicom_window(data.get("dicom_window", "auto"), blank_allowed=False)
    go_on = parsing.continue_final_message(data)
    turns, notices = await sync_to_async(parsing.check_turns, thread_sensitive=False)(
        raw_turns, answer_tokens=sampling.max_new_tokens, window=window, continue_answer=go_on
    )
    end_user = end_user_of(request, data)
    # Continuing an answer goes on from its text: past any thinking.
    thinking = thinking_wanted(data) and not go_on
    call = parsing.ChatCall(
        turns, sampling, thinking, stream, notices, end_user, continue_answer=go_on
    )
    include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage")
    generation = await start_generation(request, call)
    completion = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "created": int(time.time()),
        "model": spec.api_id,
    }
    if call.stream:
        frames = _chunks(generation, completion, bool(include_usage))
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


def _raw_turn(message: object, where: str) -> parsing.RawTurn:
    """Read an OpenAI message: content is a string or a list of text/image_url parts."""
    if not isinstance(message, dict):
        raise ApiError(422, f"{where} must be an object.", param=where)
    role = message.get("role")
    role = "system" if role == "developer" else str(role)
    content = message.get("content")
    if content is None or isinstance(content, str):
        return parsing.RawTurn(role, content or "", (), where)
    if not isinstance(content, list):
        raise ApiError(422, f"{where}.content must be a string or a list of parts.", param=where)
    texts, images = [], []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "image_url":
            image_url = part.get("image_url")
            url = image_url.get("url") if isinstance(image_url, dict) else image_url
            images.append(url)
        elif kind == "file":
            images.append(file_data_uri(part.get("file"), where))
        else:
            raise ApiError(
                422, f"{where}: content parts must be 'text', 'image_url' or 'file'.", param=where
            )
    return parsing.RawTurn(role, "\n".join(texts), tuple(images), where)


def file_data_uri(file: object, where: str) -> str:
    """A `file` part's data as a data URI: OpenAI's clients send file_data as one,
    or as bare base64 beside a filename (a .dcm name says DICOM)."""
    data = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(data, str):
        raise ApiError(
            422,
            f"{where}: a file part must carry its file_data; MedServer keeps no uploaded files.",
            param=where,
        )
    if data.startswith("data:"):
        return data
    name = str(file.get("filename") or "").lower()
    media_type = (
        "application/dicom" if name.endswith(dicom.SUFFIXES) else "application/octet-stream"
    )
    return f"data:{media_type};base64,{data}"


def thinking_wanted(data: dict) -> bool:
    """Thinking is on unless turned off, the ways OpenAI-style clients say so."""
    if data.get("reasoning_effort") in ("none", "minimal"):
        return False
    kwargs = data.get("chat_template_kwargs")
    if isinstance(kwargs, dict) and kwargs.get("enable_thinking") is False:
        return False
    return True


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
