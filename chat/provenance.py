"""An answer's provenance in words: what wrote it, and how it was asked for.

One list of facts, shown on demand under each answer and kept in exports,
because the engine can change between answers (a fallback, -q).
"""

from __future__ import annotations

from django.utils import timezone

from chat.models import Message

ENGINE_LABELS = {"transformers": "Transformers", "sglang": "SGLang", "remote": "Remote"}
QUANTIZATION_LABELS = {"nf4": "4-bit NF4 (bitsandbytes)", "none": "None (full precision)"}


def engine_label(name: str) -> str:
    """The engine's name as people write it: SGLang, Transformers, Remote."""
    return ENGINE_LABELS.get(name, name.title()) if name else "—"


def quantization_label(name: str) -> str:
    return QUANTIZATION_LABELS.get(name, name) if name else "—"


def provenance_facts(message: Message) -> list[tuple[str, str]]:
    """(label, value) pairs describing how an answer was written, in reading order."""
    sampling = message.sampling or {}
    preset = (
        f"{message.preset_name} (version {message.preset_version})"
        if message.preset_name
        else "None"
    )
    facts = [
        ("Model", message.model_name or "—"),
        ("Engine", engine_label(message.engine)),
        ("Quantization", quantization_label(message.quantization)),
        ("Preset", preset),
    ]
    if sampling:
        facts += [
            ("Temperature", _number(sampling.get("temperature"))),
            ("Top-p", _number(sampling.get("top_p"))),
            ("Token budget", _number(sampling.get("max_new_tokens"))),
            ("Thinking", "On" if sampling.get("thinking") else "Off"),
        ]
    if message.prompt_tokens is not None or message.completion_tokens is not None:
        facts.append(
            (
                "Tokens",
                f"{_number(message.prompt_tokens)} in, {_number(message.completion_tokens)} out",
            )
        )
    if message.completed_at:
        facts.append(
            ("Written", f"{timezone.localtime(message.completed_at):%Y-%m-%d %H:%M:%S %Z}")
        )
    return facts


def _number(value) -> str:
    if value is None:
        return "—"
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"
