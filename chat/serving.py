"""What this server serves and how it is configured: the one place the apps read it.

The `medserver` CLI (or the environment) builds one `ServerConfig`, which
Django keeps as `settings.MEDSERVER`; every app reads it through `config()`
here, and the served model's spec through `served_model()`, worked out once per
configuration (a model folder's config.json is not read again on every page).
The libraries get only the part they need: `image_budget()` for imaging,
`engine_config()` for inference. Templates get `page_limits()`, which holds
no secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings

from imaging import ImageBudget
from inference import worker
from inference.config import EngineConfig
from inference.registry import ModelSpec, model_spec_for


def config():
    """The running server's configuration (a medserver_site.config.ServerConfig)."""
    return settings.MEDSERVER


def served_model() -> ModelSpec:
    """The spec of the model this server serves (-m)."""
    return _spec(config().model)


@lru_cache(maxsize=8)
def _spec(model: str) -> ModelSpec:
    return model_spec_for(model)


def image_budget() -> ImageBudget:
    """How many images a message may carry: the context, an image's tokens, --max-image-count."""
    current = config()
    return ImageBudget(
        context_tokens=current.max_model_len,
        image_tokens=served_model().image_tokens,
        max_images=current.max_image_count,
    )


def engine_config() -> EngineConfig:
    """What the engine worker is started with."""
    return config().engine_config()


def engine_worker() -> worker.EngineWorker:
    """The process's engine worker, started from this configuration if it is not yet."""
    return worker.running_engine_worker() or worker.start_engine_worker(engine_config())


@dataclass(frozen=True)
class PageLimits:
    """What the page tells a clinician of the server's limits (nothing secret)."""

    max_image_count: int
    max_payload_mb: int
    max_payload_bytes: int
    max_text_length: int
    session_timeout: float  # minutes of inactivity before the sign-out (a fraction: seconds)


def page_limits() -> PageLimits:
    """The limits the page shows and its scripts check before sending."""
    current = config()
    return PageLimits(
        max_image_count=current.max_image_count,
        max_payload_mb=current.max_payload_mb,
        max_payload_bytes=current.max_payload_bytes,
        max_text_length=current.max_text_length,
        session_timeout=current.session_timeout,
    )
