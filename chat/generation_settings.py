"""A session's generation settings: the bounds the server sets, and what applies.

What applies to an answer: its instructions (the session's preset, then the
session's own system prompt) and its sampling. Both are also recorded with
each answer, as its provenance (`provenance_for`).

A session may choose its own temperature, top-p and answer length; whatever it
leaves empty is the server's default. With `--no-allow-client-sampling-config`
the server's temperature and top-p apply whatever a session says, as they do
for API clients.
"""

from __future__ import annotations

from dataclasses import dataclass

from chat import serving
from chat.models import ChatSession
from inference.engine import Sampling

TEMPERATURE_RANGE = (0.0, 2.0)
TOP_P_RANGE = (0.0, 1.0)  # above 0, up to 1


@dataclass(frozen=True)
class Bounds:
    """What the server allows a session to choose, and its defaults."""

    default_temperature: float
    default_top_p: float
    default_max_new_tokens: int
    max_new_tokens: int
    sampling_locked: bool
    max_system_prompt: int
    min_temperature: float = TEMPERATURE_RANGE[0]
    max_temperature: float = TEMPERATURE_RANGE[1]
    max_top_p: float = TOP_P_RANGE[1]


def bounds() -> Bounds:
    config = serving.config()
    spec = serving.served_model()
    return Bounds(
        default_temperature=config.default_temperature,
        default_top_p=config.default_top_p,
        default_max_new_tokens=config.max_new_tokens or spec.answer_tokens,
        # The same ceiling as the JSON API's max_tokens: the context length.
        max_new_tokens=config.max_model_len,
        sampling_locked=not config.allow_client_sampling_config,
        max_system_prompt=config.max_text_length,
    )


THINKING_BUDGET_FACTOR = 2


def sampling_for(session: ChatSession) -> Sampling:
    """The sampling an answer in `session` is written with."""
    limits = bounds()
    temperature, top_p = limits.default_temperature, limits.default_top_p
    if not limits.sampling_locked:
        temperature = session.temperature if session.temperature is not None else temperature
        top_p = session.top_p if session.top_p is not None else top_p
    tokens = min(session.max_new_tokens or limits.default_max_new_tokens, limits.max_new_tokens)
    if thinking_for(session):
        # The trace is written before the answer: it gets a budget of its own.
        tokens = min(tokens * THINKING_BUDGET_FACTOR, serving.config().max_model_len)
    return Sampling(max_new_tokens=tokens, temperature=temperature, top_p=top_p)


def system_prompt_for(session: ChatSession) -> str:
    """The instructions an answer in `session` is written with: the preset's, then its own."""
    parts = [session.preset.system_prompt if session.preset else "", session.system_prompt]
    return "\n\n".join(part.strip() for part in parts if part.strip())


def thinking_for(session: ChatSession) -> bool:
    """Whether an answer in `session` shows the model's reasoning."""
    return session.thinking and can_think()


def provenance_for(session: ChatSession) -> dict:
    """What an answer records of how it is asked for: sampling and preset version."""
    preset = session.preset
    return {
        "sampling": recorded_sampling(sampling_for(session), thinking=thinking_for(session)),
        "preset_name": preset.name if preset else "",
        "preset_version": preset.version if preset else None,
    }


def recorded_sampling(sampling: Sampling, *, thinking: bool) -> dict:
    """How an answer records the sampling and thinking it is written with."""
    return {
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "max_new_tokens": sampling.max_new_tokens,
        "thinking": thinking,
    }


def sampling_recorded(recorded: dict, session: ChatSession) -> Sampling:
    """The sampling an answer recorded (`recorded_sampling`), to write it on with;
    `session`'s for an answer saved before answers recorded it."""
    if not {"max_new_tokens", "temperature", "top_p"} <= recorded.keys():
        return sampling_for(session)
    return Sampling(
        max_new_tokens=recorded["max_new_tokens"],
        temperature=recorded["temperature"],
        top_p=recorded["top_p"],
    )


def can_think() -> bool:
    """Whether the served model can show its reasoning (so a thinking switch makes sense)."""
    return serving.served_model().can_think
