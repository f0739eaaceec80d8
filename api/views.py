"""MedServer's JSON API: the original tool's routes, same paths and shapes."""

from __future__ import annotations

import time

from asgiref.sync import sync_to_async
from django.http import JsonResponse

from api import parsing
from api.auth import api_endpoint
from api.conversation import ChatCall
from api.errors import ApiError
from api.generation import Generation, failure_error, start_generation, timings, usage
from api.protocol import AnalyzeForm, ChatRequest
from api.schema import openapi_document
from api.sse import EventStreamResponse, sse_frame
from chat import serving
from chat.serving import engine_worker
from inference.engine import Delta, Failed, Finished
from inference.hardware import gpu_facts
from inference.registry import MODELS
from medserver_site import __version__


@api_endpoint("GET", public=True)
async def health(request) -> JsonResponse:
    """Whether the model is loading, ready or failed; answers while it loads (503)."""
    worker = engine_worker()
    state = worker.state
    body = {
        "status": state.status,
        "model": state.model,
        "engine": state.engine or None,
        "engine_reason": state.engine_reason or None,
        "version": __version__,
        "uptime_seconds": round(time.time() - state.started_at, 1),
        "queue_depth": worker.queue_depth,
    }
    if state.checks:
        body["engine_checks"] = state.checks
    if state.status == "error":
        body["reason"] = state.reason
    if state.ready_at is not None:
        body["load_seconds"] = round(state.ready_at - state.started_at, 1)
    if serving.config().show_hardware_stats:
        gpus = gpu_facts()
        body["device"] = state.details
        body["gpus"] = gpus
        body["hardware"] = ", ".join(gpu["name"] for gpu in gpus) or "CPU only"
    # 200 only when requests can be served: load balancers and watchdogs read the code.
    return JsonResponse(body, status=200 if state.status == "ready" else 503)


@api_endpoint("GET")
async def models(request) -> JsonResponse:
    """Every model variant MedServer can serve, and which one this server runs."""
    served = serving.config().model
    variants = [
        {
            "key": spec.key,
            "id": spec.api_id,
            "label": spec.label,
            "type": "multimodal" if spec.multimodal else "text",
            "size": spec.size,
            "min_vram_gb": spec.min_vram_gb,
            "thinking": spec.can_think,
            "loaded": spec.key == served,
        }
        for spec in MODELS.values()
    ]
    return JsonResponse({"models": variants})


@api_endpoint("GET")
async def model_info(request) -> JsonResponse:
    """The loaded model and engine, its context length and the limits in force."""
    config = serving.config()
    spec = serving.served_model()
    state = engine_worker().state
    return JsonResponse(
        {
            "model": {
                "key": spec.key,
                "id": spec.api_id,
                "label": spec.label,
                "type": "multimodal" if spec.multimodal else "text",
                "thinking": spec.can_think,
            },
            "status": state.status,
            "engine": state.engine or None,
            "engine_reason": state.engine_reason or None,
            "device": state.details,
            "context_length": config.max_model_len,
            "sampling": {
                "default_temperature": config.default_temperature,
                "default_top_p": config.default_top_p,
                "max_tokens": config.max_new_tokens or spec.answer_tokens,
                "client_may_set": config.allow_client_sampling_config,
            },
            "limits": {
                "rate_limit": config.rate_limit,
                "max_user_streams": config.max_user_streams,
                "max_history_messages": config.max_history_messages,
                "max_text_length": config.max_text_length,
                "max_image_count": config.max_image_count,
                "max_payload_mb": config.max_payload_mb,
            },
        }
    )


@api_endpoint("POST", generates=True)
async def chat(request):
    """Chat completion: `{"messages": [...], "stream": true}` streams Server-Sent Events."""
    body = ChatRequest.of(await parsing.read_json_off_loop(request))
    call = await sync_to_async(body.to_chat_call, thread_sensitive=False)(request)
    return await _respond(request, call)


@api_endpoint("POST", generates=True)
async def analyze(request):
    """Image analysis: a multipart form with one or more `images` (or `image`) and a `prompt`."""
    if request.content_type != "multipart/form-data":
        raise ApiError(415, "Send the images as multipart/form-data.")
    parsing.check_length(request)
    uploads = request.FILES.getlist("images") + request.FILES.getlist("image")
    form = AnalyzeForm.of({**request.POST.dict(), "images": uploads})
    call = await sync_to_async(form.to_chat_call, thread_sensitive=False)(request)
    return await _respond(request, call)


@api_endpoint("GET", "POST", "PUT", "PATCH", "DELETE", public=True)
async def not_found(request, rest: str = "") -> JsonResponse:
    """Any other path under /api/ or /v1/: a JSON 404, not a page."""
    raise ApiError(404, f"There is no API endpoint at {request.path}; see /api/schema.")


@api_endpoint("GET")
async def schema(request) -> JsonResponse:
    """The OpenAPI document of this API."""
    return JsonResponse(openapi_document())


async def _respond(request, call: ChatCall):
    generation = await start_generation(request, call)
    if call.stream:
        frames = _event_frames(generation, call.notices)
        return EventStreamResponse(frames, on_close=generation.close)
    answer = await generation.answer()
    return JsonResponse(
        {
            "model": serving.served_model().api_id,
            "content": answer.content,
            "thinking": answer.thinking,
            "finish_reason": answer.finished.reason,
            "usage": usage(answer.finished),
            "timings": timings(answer.finished),
            "notices": list(call.notices),
            "provenance": generation.provenance,
        }
    )


async def _event_frames(generation: Generation, notices: tuple[str, ...]):
    async for event in generation.events():
        if isinstance(event, Delta):
            yield sse_frame({"type": event.kind, "delta": event.text})
        elif isinstance(event, Finished):
            yield sse_frame(
                {
                    "type": "done",
                    "finish_reason": event.reason,
                    "usage": usage(event),
                    "timings": timings(event),
                    "notices": list(notices),
                    "provenance": generation.provenance,
                }
            )
        elif isinstance(event, Failed):
            yield sse_frame({"type": "error", **failure_error(event).body()})
    yield sse_frame("[DONE]")
