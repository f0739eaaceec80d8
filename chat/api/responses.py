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

from chat.api import message_images, parsing, unsupported
from chat.api.auth import api_endpoint
from chat.api.end_users import end_user_of
from chat.api.errors import ApiError
from chat.api.generation import Generation, failure_error, start_generation
from chat.api.openai import check_model, file_data_uri, thinking_wanted
from chat.api.sse import EventStreamResponse, sse_frame
from inference.engine import Delta, Failed, Finished

_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}


@api_endpoint("POST")
async def create_response(request):
    data = parsing.read_json(request)
    model = check_model(data.get("model"))
    unsupported.refuse(data, unsupported.RESPONSES)
    raw_turns = _raw_turns(data.get("input"), data.get("instructions"))
    sampling = parsing.sampling_from(data, max_tokens_names=("max_output_tokens",))
    stream = parsing.flag(data, "stream", False)
    window = message_images.dicom_window(data.get("dicom_window", "auto"), blank_allowed=False)
    turns, notices = await sync_to_async(parsing.check_turns, thread_sensitive=False)(
        raw_turns, answer_tokens=sampling.max_new_tokens, window=window
    )
    call = parsing.ChatCall(
        turns, sampling, _thinking(data), stream, notices, end_user_of(request, data)
    )
    generation = await start_generation(request, call)
    shell = response_shell(model, data, sampling, generation.provenance)
    if stream:
        return EventStreamResponse(_events(generation, shell), on_close=generation.close)
    answer = await generation.answer()
    return JsonResponse(_finished(shell, answer.thinking, answer.content, answer.finished))


def response_shell(model: str, data: dict, sampling, provenance: dict) -> dict:
    """The fields of a response that do not depend on the answer."""
    return {
        "id": f"resp_{uuid.uuid4().hex}",
        "object": "response",
        "created_at": int(time.time()),
        "model": model,
        "instructions": data.get("instructions"),
        "max_output_tokens": sampling.max_new_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "parallel_tool_calls": False,
        "tool_choice": data.get("tool_choice") or "auto",
        "tools": [],
        "text": {"format": {"type": "text"}},
        "reasoning": {"effort": None, "summary": None},
        "store": False,
        "metadata": data.get("metadata") if isinstance(data.get("metadata"), dict) else {},
        "error": None,
        "incomplete_details": None,
        "provenance": provenance,
    }


def _thinking(data: dict) -> bool:
    reasoning = data.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("effort") in ("none", "minimal"):
        return False
    return thinking_wanted(data)


def _raw_turns(items: object, instructions: object) -> list[parsing.RawTurn]:
    turns = []
    if instructions is not None:
        if not isinstance(instructions, str):
            raise ApiError(422, "instructions must be a string.", param="instructions")
        turns.append(parsing.RawTurn("system", instructions, (), "instructions"))
    if isinstance(items, str):
        return [*turns, parsing.RawTurn("user", items, (), "input")]
    if not isinstance(items, list):
        raise ApiError(422, "input must be a string or a list of messages.", param="input")
    for index, item in enumerate(items):
        where = f"input[{index}]"
        if not isinstance(item, dict):
            raise ApiError(422, f"{where} must be an object.", param=where)
        kind = item.get("type", "message")
        if kind == "reasoning":
            continue  # an earlier answer's thinking, sent back: the model is not shown it
        if kind != "message":
            raise ApiError(
                400,
                f"{where}: MedServer takes messages only, not {str(kind)[:40]!r} items.",
                param=where,
                code="unsupported_parameter",
            )
        turns.append(_raw_turn(item, where))
    # The Responses API lets a system message follow others; check_turns wants it first.
    return turns


def _raw_turn(item: dict, where: str) -> parsing.RawTurn:
    role = _ROLES.get(item.get("role"))
    if role is None:
        raise ApiError(
            422, f"{where}: role must be user, assistant, system or developer.", param=where
        )
    content = item.get("content")
    if isinstance(content, str):
        return parsing.RawTurn(role, content, (), where)
    if not isinstance(content, list):
        raise ApiError(422, f"{where}.content must be a string or a list of parts.", param=where)
    texts, images = [], []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text") and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            images.append(part["image_url"])
        elif kind == "input_file" and isinstance(part.get("file_data"), str):
            images.append(_file_data_uri(part))
        elif kind in ("input_image", "input_file"):
            raise ApiError(
                422,
                f"{where}: send images and files inline (image_url or file_data as a data URI); "
                "MedServer keeps no uploaded files.",
                param=where,
            )
        else:
            raise ApiError(
                422,
                f"{where}: content parts must be input_text, input_image or input_file.",
                param=where,
            )
    return parsing.RawTurn(role, "\n".join(texts), tuple(images), where)


def _file_data_uri(part: dict) -> str:
    return file_data_uri({"file_data": part["file_data"], "filename": part.get("filename")}, "")


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
