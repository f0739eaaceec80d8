"""Prometheus metrics for the clinic's monitoring: what the server is doing now,
and how fast it answers.

Served at /metrics on the main port when --metrics-token is set (send it as
'Authorization: Bearer <token>'), and/or by prometheus_client's own small HTTP
server on --metrics-listen HOST:PORT (an address only the monitoring network
reaches). With neither, /metrics answers 404: it says how busy the clinic is.
"""

from __future__ import annotations

import hmac
import logging

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from chat import serving
from inference.engine import Failed, Finished

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

REQUESTS = Counter(
    "medserver_http_requests",
    "HTTP requests answered, by route (the URL pattern, not the path) and status",
    ["route", "method", "status"],
    registry=REGISTRY,
)
TIME_TO_FIRST_TOKEN = Histogram(
    "medserver_time_to_first_token_seconds",
    "Seconds from the engine taking an answer to its first token",
    ["engine"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64),
    registry=REGISTRY,
)
TOKENS_PER_SECOND = Histogram(
    "medserver_tokens_per_second",
    "Tokens per second of each answer after its first token",
    ["engine"],
    buckets=(1, 2, 5, 10, 20, 40, 80, 160, 320, 640),
    registry=REGISTRY,
)
ANSWERS = Counter(
    "medserver_answers",
    "Answers ended, by engine and how they ended (stop, length, cancelled, repetition, failed)",
    ["engine", "reason"],
    registry=REGISTRY,
)


def observe_answer_end(engine: str, event) -> None:
    """The engine worker's end hook: count the answer and time it."""
    engine = engine or "unknown"
    if isinstance(event, Failed):
        ANSWERS.labels(engine, "failed").inc()
        return
    if not isinstance(event, Finished):
        return
    ANSWERS.labels(engine, event.reason).inc()
    first = event.first_token_seconds
    if first is None:
        return
    TIME_TO_FIRST_TOKEN.labels(engine).observe(first)
    decode = event.total_seconds - first
    if event.completion_tokens > 1 and decode > 0:
        TOKENS_PER_SECOND.labels(engine).observe((event.completion_tokens - 1) / decode)


class _ServerState:
    """Read at each scrape: the worker's queue, the streams, the engine's restarts, GPUs."""

    def collect(self):
        from chat import limits
        from chat.serving import engine_worker

        worker = engine_worker()
        engine = worker.state.engine or "none"
        gauges = [
            ("medserver_queue_depth", "Answers waiting for the engine", worker.queue_depth),
            ("medserver_engine_running", "Answers the engine is generating", worker.running),
            (
                "medserver_streams_running",
                "Answers held by a user's stream slot",
                limits.running_streams(),
            ),
        ]
        for name, text, value in gauges:
            yield GaugeMetricFamily(name, text, value=value)
        ready = GaugeMetricFamily(
            "medserver_model_ready",
            "1 when the model answers, 0 while loading or failed",
            labels=["model", "engine", "status"],
        )
        ready.add_metric(
            [worker.state.model, engine, worker.state.status], int(worker.state.status == "ready")
        )
        yield ready
        yield CounterMetricFamily(
            "medserver_engine_fallbacks",
            "Times the engine gave up and the fallback was loaded",
            value=worker.fallbacks,
        )
        yield CounterMetricFamily(
            "medserver_engine_thread_restarts",
            "Times the engine's thread had died and was restarted",
            value=worker.thread_restarts,
        )
        yield from _gpu_metrics()


def _gpu_metrics():
    """GPU memory and utilization through NVML, when a GPU and its driver are there."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no driver, no GPU: nothing to report
        return
    used = GaugeMetricFamily(
        "medserver_gpu_memory_used_bytes", "GPU memory in use", labels=["gpu", "name"]
    )
    total = GaugeMetricFamily(
        "medserver_gpu_memory_total_bytes", "GPU memory", labels=["gpu", "name"]
    )
    util = GaugeMetricFamily(
        "medserver_gpu_utilization_ratio",
        "Share of time the GPU was busy (0-1)",
        labels=["gpu", "name"],
    )
    try:
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            name = name.decode() if isinstance(name, bytes) else name
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            rates = pynvml.nvmlDeviceGetUtilizationRates(handle)
            labels = [str(index), name]
            used.add_metric(labels, memory.used)
            total.add_metric(labels, memory.total)
            util.add_metric(labels, rates.gpu / 100)
    except Exception:
        log.debug("Reading the GPUs through NVML failed", exc_info=True)
    finally:
        pynvml.nvmlShutdown()
    yield from (used, total, util)


REGISTRY.register(_ServerState())


def install(worker) -> None:
    """Watch `worker`'s answers; start the metrics listener if one is configured."""
    if observe_answer_end not in worker.end_hooks:
        worker.end_hooks.append(observe_answer_end)
    address = serving.config().metrics_listen
    if address:
        host, _, port = address.rpartition(":")
        try:
            start_http_server(int(port), addr=host.strip("[]"), registry=REGISTRY)
        except OSError as error:
            raise SystemExit(f"medserver: cannot serve metrics on {address}: {error}") from None
        log.info("Prometheus metrics at http://%s/metrics", address)


@require_GET
@login_not_required  # its own bearer token, not a clinician's session
def metrics_view(request) -> HttpResponse:
    """/metrics on the main port: only with --metrics-token, and only with that token."""
    token = serving.config().metrics_token
    if not token:
        return HttpResponse(
            "Not found: /metrics is off (see --metrics-token).\n",
            status=404,
            content_type="text/plain",
        )
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip().encode(), token.encode()):
        response = HttpResponse(
            "Send the metrics token as 'Authorization: Bearer <token>'.\n",
            status=401,
            content_type="text/plain",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)


class RequestMetricsMiddleware:
    """Counts every response by its URL pattern, so that paths with ids stay one series.

    Sync and async, so that it adds no thread hop in front of the async API views.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self._async:
            return self._acall(request)
        return _counted(request, self.get_response(request))

    async def _acall(self, request):
        return _counted(request, await self.get_response(request))


def _counted(request, response):
    match = getattr(request, "resolver_match", None)
    route = ("/" + match.route) if match is not None and match.route else "unmatched"
    REQUESTS.labels(route, request.method, str(response.status_code)).inc()
    return response
