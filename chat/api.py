"""MedServer's JSON API."""

from __future__ import annotations

import time

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from inference.worker import engine_worker
from medserver_site import __version__


@login_not_required
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Whether the model is loading, ready or failed; answers while it loads."""
    worker = engine_worker()
    state = worker.state
    body = {
        "status": state.status,
        "model": state.model,
        "engine": state.engine or None,
        "version": __version__,
        "uptime_seconds": round(time.time() - state.started_at, 1),
        "queue_depth": worker.queue_depth,
    }
    if state.status == "error":
        body["reason"] = state.reason
    if state.ready_at is not None:
        body["load_seconds"] = round(state.ready_at - state.started_at, 1)
    return JsonResponse(body, status=503 if state.status == "error" else 200)
