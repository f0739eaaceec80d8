"""OpenAI's Responses API (/v1/responses), as the `openai` package's
`client.responses.create` uses it, with or without `stream=True`.

Input is a string or a list of messages whose content is a string or
input_text / input_image / input_file parts (images, DICOM files and zips as
data URIs, as in /v1/chat/completions); `instructions` is the system message.
Thinking comes back as a `reasoning` output item before the message. Nothing
is stored: `previous_response_id` is refused (send the whole conversation).
"""

from __future__ import annotations

import time
import uuid

from asgiref.sync import sync_to_async
from django.http import JsonResponse

from api import parsing
from api.auth import api_endpoint
from api.generation import Generation, failure_error, start_generation
from api.openai_protocol import ResponseRequest
from api.sse import EventStreamResponse, sse_frame
from inference.engine import Delta, Failed, Finished


@api_endpoint("POST")
async def create_response(request):
    body = ResponseRequest.of(await parsing.read_json_off_loop(request))
    call = await sync_to_async(body.to_chat_call, thread_sensitive=False)(request)
    generation = await start_generation(request, call)
    echoed = body.model_dump(include={"instructions", "tool_choice", "metadata"})
    shell = response_shell(body.model, echoed, call.sampling, generation.provenance)
    if call.stream:
        return EventStreamResponse(_events(generation, shell), on_close=generation.close)
    answer = await generation.answer()
    return JsonResponse(_finished(shell, answer.thinking, answer.content, answer.finished))


def response_shell(model: str, echoed: dict, sampling, provenance: dict) -> dict:
    """The fields of a response that do not depend on the answer; `echoed` holds
    the request's instructions, tool_choice and metadata, sent back as OpenAI does."""
    return {
        "id": f"resp_{uuid.uuid4().hex}",
        "object": "response",
        "created_at": int(time.time()),
        "model": model,
        "instructions": echoed.get("instructions"),
        "max_output_tokens": sampling.max_new_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "parallel_tool_calls": False,
        "tool_choice": echoed.get("tool_choice") or "auto",
        "tools": [],
        "text": {"format": {"type": "text"}},
        "reasoning": {"effort": None, "summary": None},
        "store": False,
        "metadata": echoed.get("metadata") or {},
        "error": None,
        "incomplete_details": None,
        "provenance": provenance,
    }


def _usage(finished: Finished) -> dict:
    return {
        "input_tokens": finished.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": finished.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": finished.prompt_tokens + finished.completion_tokens,
    }


def _reasoning_item(item_id: str, text: str) -> dict:
    return {
        "type": "reasoning",
        "id": item_id,
        "summary": [],
        "content": [{"type": "reasoning_text", "text": text}],
        "status": "completed",
    }


def _message_item(item_id: str, text: str, status: str = "completed") -> dict:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": content if status == "completed" else [],
    }


def _finished(shell: dict, thinking: str, answer: str, finished: Finished) -> dict:
    output = [_reasoning_item(f"rs_{uuid.uuid4().hex}", thinking)] if thinking else []
    output.append(_message_item(f"msg_{uuid.uuid4().hex}", answer))
    cut_off = finished.reason == "length"
    return {
        **shell,
        "status": "incomplete" if cut_off else "completed",
        "incomplete_details": {"reason": "max_output_tokens"} if cut_off else None,
        "output": output,
        "usage": _usage(finished),
    }


class _Sequence:
    """Numbers the stream's events, as OpenAI's clients expect."""

    def __init__(self) -> None:
        self.number = -1

    def frame(self, kind: str, **fields) -> str:
        self.number += 1
        payload = {"type": kind, "sequence_number": self.number, **fields}
        return f"event: {kind}\n" + sse_frame(payload)


async def _events(generation: Generation, shell: dict):
    """The Responses API's stream: created, then each output item opened, its text in
    deltas and closed, then completed (or incomplete, at the token limit)."""
    seq = _Sequence()
    running = {**shell, "status": "in_progress", "output": [], "usage": None}
    yield seq.frame("response.created", response=running)
    yield seq.frame("response.in_progress", response=running)
    texts = {"thinking": [], "answer": []}
    items: list[dict] = []  # the output items opened so far, closed in turn
    open_kind = None

    def close_open_item():
        text = "".join(texts[open_kind])
        item = items[-1]
        index = len(items) - 1
        if open_kind == "thinking":
            yield seq.frame(
                "response.reasoning_text.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                text=text,
            )
            done = _reasoning_item(item["id"], text)
        else:
            part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
            yield seq.frame(
                "response.output_text.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                text=text,
                logprobs=[],
            )
            yield seq.frame(
                "response.content_part.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part=part,
            )
            done = _message_item(item["id"], text)
        items[-1] = done
        yield seq.frame("response.output_item.done", output_index=index, item=done)

    def open_item(kind: str):
        index = len(items)
        if kind == "thinking":
            item = {"type": "reasoning", "id": f"rs_{uuid.uuid4().hex}", "summary": []}
            items.append(item)
            yield seq.frame("response.output_item.added", output_index=index, item=item)
        else:
            item = _message_item(f"msg_{uuid.uuid4().hex}", "", status="in_progress")
            items.append(item)
            yield seq.frame("response.output_item.added", output_index=index, item=item)
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            yield seq.frame(
                "response.content_part.added",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part=part,
            )

    async for event in generation.events():
        if isinstance(event, Delta):
            if event.kind != open_kind:
                if open_kind is not None:
                    for frame in close_open_item():
                        yield frame
                open_kind = event.kind
                for frame in open_item(event.kind):
                    yield frame
            texts[event.kind].append(event.text)
            kind = (
                "response.reasoning_text.delta"
                if event.kind == "thinking"
                else "response.output_text.delta"
            )
            extra = {} if event.kind == "thinking" else {"logprobs": []}
            yield seq.frame(
                kind,
                item_id=items[-1]["id"],
                output_index=len(items) - 1,
                content_index=0,
                delta=event.text,
                **extra,
            )
        elif isinstance(event, Finished):
            if open_kind != "answer":  # an empty answer still comes as a message
                if open_kind is not None:
                    for frame in close_open_item():
                        yield frame
                open_kind = "answer"
                for frame in open_item("answer"):
                    yield frame
            for frame in close_open_item():
                yield frame
            thinking = "".join(texts["thinking"])
            final = _finished(shell, thinking, "".join(texts["answer"]), event)
            final["output"] = items
            kind = (
                "response.incomplete" if final["status"] == "incomplete" else "response.completed"
            )
            yield seq.frame(kind, response=final)
        elif isinstance(event, Failed):
            error = failure_error(event)
            yield seq.frame("error", code=error.code, message=error.message, param=None)
