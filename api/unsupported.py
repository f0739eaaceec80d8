"""OpenAI parameters MedServer cannot honour, refused the way OpenAI-compatible
servers refuse them: 400, naming the parameter.

A parameter asked for and silently dropped would hand the client something
other than it asked for (free text where it expects JSON, one answer where it
expects three), so each is refused unless its value asks for nothing. The
no-ops are accepted because front ends send them on every turn: `tools` (Open
WebUI sends its tool list; the model never calls one) with `tool_choice`
absent, "auto" or "none"; `parallel_tool_calls`, `store`, `metadata`, `user`
(recorded, see api.end_users), `service_tier`, `stream_options`; and a
penalty of 0, `n` of 1, `logprobs` false, `response_format` {"type": "text"}.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic_core import PydanticCustomError, core_schema

# What asks for nothing: a check, and the same as JSON Schema for the OpenAPI document.
Harmless = tuple[Callable[[object], bool], dict]
_NULL = {"type": "null"}


@dataclass(frozen=True)
class Unsupported:
    """A parameter refused unless it asks for nothing. As a field's type
    (api.protocol) it refuses with an "unsupported" error (400, naming it)
    and documents the values it takes."""

    name: str
    harmless: Harmless
    reason: str

    def __get_pydantic_core_schema__(self, source: Any, handler) -> core_schema.CoreSchema:
        asks_for_nothing = self.harmless[0]

        def check(value: object) -> object:
            if not asks_for_nothing(value):
                raise PydanticCustomError("unsupported", self.reason)
            return value

        return core_schema.no_info_plain_validator_function(check)

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler) -> dict:
        return {**self.harmless[1], "description": f"Not supported (400): {self.reason}"}


def fields(table: tuple[Unsupported, ...]) -> dict:
    """The parameters of `table` as fields, for pydantic.create_model."""
    return {item.name: (Annotated[object, item], None) for item in table}


def _absent_or(*harmless: object) -> Harmless:
    def check(value: object) -> bool:
        # bool is an int: `True` must not pass for 1.
        return value is None or any(type(value) is type(h) and value == h for h in harmless)

    # 1 and 1.0 are one value in JSON.
    return check, {"enum": list(dict.fromkeys([*harmless, None]))} if harmless else _NULL


def _zero_check(value: object) -> bool:
    return value is None or (type(value) in (int, float) and value == 0)


_ZERO = (_zero_check, {"enum": [0, None]})
_EMPTY = (
    lambda value: value is None or value == {},
    {"oneOf": [_NULL, {"type": "object", "maxProperties": 0}]},
)
_TEXT_FORMAT_SCHEMA = {
    "oneOf": [
        _NULL,
        {
            "type": "object",
            "properties": {"type": {"const": "text"}},
            "required": ["type"],
            "additionalProperties": False,
        },
    ]
}


def _text_format_check(value: object) -> bool:
    return value is None or value == {"type": "text"}


def _text_options_check(value: object) -> bool:
    """The Responses API's `text`: only the plain-text format (and a verbosity)."""
    return value is None or (
        isinstance(value, dict)
        and _text_format_check(value.get("format"))
        and set(value) <= {"format", "verbosity"}
    )


_TEXT_FORMAT = (_text_format_check, _TEXT_FORMAT_SCHEMA)
_TEXT_OPTIONS = (
    _text_options_check,
    {
        "oneOf": [
            _NULL,
            {
                "type": "object",
                "properties": {"format": _TEXT_FORMAT_SCHEMA, "verbosity": {}},
                "additionalProperties": False,
            },
        ]
    },
)
_TEXT_ONLY = (
    lambda value: value is None or value == ["text"],
    {"oneOf": [_NULL, {"const": ["text"]}]},
)
_NO_TOOL_CALL = _absent_or("auto", "none")
_TOOLS = (
    "MedServer's models never call tools; send tool_choice as 'auto' or 'none', or leave it out."
)

CHAT_COMPLETIONS = (
    Unsupported("n", _absent_or(1), "MedServer writes one answer per request: n must be 1."),
    Unsupported("logprobs", _absent_or(False), "MedServer does not return log probabilities."),
    Unsupported("top_logprobs", _absent_or(0), "MedServer does not return log probabilities."),
    Unsupported(
        "seed",
        _absent_or(),
        "MedServer does not take a seed; use temperature 0 for repeatable answers.",
    ),
    Unsupported("presence_penalty", _ZERO, "MedServer does not apply presence penalties."),
    Unsupported("frequency_penalty", _ZERO, "MedServer does not apply frequency penalties."),
    Unsupported("logit_bias", _EMPTY, "MedServer does not apply logit biases."),
    Unsupported(
        "response_format",
        _TEXT_FORMAT,
        'MedServer answers in free text; response_format can only be {"type": "text"}.',
    ),
    Unsupported("tool_choice", _NO_TOOL_CALL, _TOOLS),
    Unsupported("function_call", _NO_TOOL_CALL, _TOOLS),
    Unsupported("modalities", _TEXT_ONLY, "MedServer answers in text only."),
    Unsupported("audio", _absent_or(), "MedServer answers in text only."),
    Unsupported("prediction", _absent_or(), "MedServer does not take predicted outputs."),
    # vLLM's and SGLang's own sampling and structured-output fields, which their
    # clients send to MedServer too (top_k, which every engine honours, is taken).
    Unsupported("min_p", _ZERO, "MedServer samples with top_p only; min_p is not supported."),
    Unsupported(
        "repetition_penalty",
        _absent_or(1, 1.0),
        "MedServer does not apply repetition penalties (its loop guard stops a repeating answer).",
    ),
    Unsupported("min_tokens", _ZERO, "MedServer does not take a minimum answer length."),
    Unsupported(
        "best_of", _absent_or(1), "MedServer writes one answer per request: best_of must be 1."
    ),
    Unsupported("use_beam_search", _absent_or(False), "MedServer does not search beams."),
    *(
        Unsupported(
            name,
            _absent_or(),
            "MedServer answers in free text; it does not "
            "constrain answers to a schema, pattern or grammar.",
        )
        for name in (
            "guided_json",
            "guided_regex",
            "guided_choice",
            "guided_grammar",
            "structured_outputs",
            "regex",
            "json_schema",
            "ebnf",
        )
    ),
)

RESPONSES = (
    Unsupported(
        "previous_response_id",
        _absent_or(),
        "MedServer keeps no responses; send the whole conversation as input.",
    ),
    Unsupported(
        "conversation",
        _absent_or(),
        "MedServer keeps no conversations; send the whole conversation as input.",
    ),
    Unsupported("background", _absent_or(False), "MedServer answers in the foreground only."),
    Unsupported("prompt", _absent_or(), "MedServer has no stored prompts."),
    Unsupported("top_logprobs", _absent_or(0), "MedServer does not return log probabilities."),
    Unsupported(
        "text",
        _TEXT_OPTIONS,
        'MedServer answers in free text; text.format can only be {"type": "text"}.',
    ),
    Unsupported("tool_choice", _NO_TOOL_CALL, _TOOLS),
)
