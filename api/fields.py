"""The field types of the API's request models (api.protocol), and how their
errors become ApiErrors.

Each type both checks a value and describes it in the OpenAPI document, so the
two cannot disagree. A bound that is a server setting ("max_model_len") is read
from the running server's config each time: when a request is checked and when
the document is built.

They refuse with pydantic custom errors of a few kinds, which `api_error` turns
into MedServer's ApiError, in this one place:
- "invalid": what the value must be, as a predicate ("must be true or false");
  the message reads "<where> <predicate>." (422); "too_large" the same, 413;
- "refused": a whole sentence (422);
- "unsupported": a parameter MedServer cannot honour (400, code unsupported_parameter);
- "model_not_found": a model not served here (404).
Pydantic's own errors (a string where an object belongs) read the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, get_args

from pydantic import ValidationError
from pydantic_core import PydanticCustomError, core_schema

from api.errors import ApiError
from chat import serving

# A predicate, read after where the problem is, and its status.
_PREDICATES = {"invalid": 422, "too_large": 413}
# A whole sentence, used as it is, and its status and code.
_SENTENCES = {
    "refused": (422, None),
    "unsupported": (400, "unsupported_parameter"),
    "model_not_found": (404, "model_not_found"),
}
# Reported before any other error: the model named, then what MedServer cannot honour.
_FIRST = {"model_not_found": 0, "unsupported": 1}
# Pydantic's own errors, said the way MedServer's are.
_PHRASES = {
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "list_type": "must be a list",
    "int_type": "must be a whole number",
    "float_type": "must be a number",
    "literal_error": "must be one of {expected}",
}


def invalid(predicate: str) -> PydanticCustomError:
    """The error for a value that is not what it must be: `predicate` says what it
    must be ("must be true or false"), used as it is."""
    return PydanticCustomError("invalid", predicate)


def api_error(error: ValidationError) -> ApiError:
    """The ApiError for a request body's first problem (the model it names and
    parameters MedServer cannot honour come first), naming where it is."""
    first = min(error.errors(include_url=False), key=lambda e: _FIRST.get(e["type"], 2))
    kind, loc = first["type"], first["loc"]
    if kind in _SENTENCES:
        status, code = _SENTENCES[kind]
        return ApiError(status, first["msg"], param=_param(loc), code=code)
    if kind in _PREDICATES:
        predicate = first["msg"]
    elif kind in _PHRASES:
        predicate = _PHRASES[kind].format(**first.get("ctx", {}))
    else:  # pydantic's wording ("Input should be ...") for what MedServer has not worded
        predicate = f"is not valid: {first['msg']}"
    where = _where(loc) or "The request body"
    return ApiError(_PREDICATES.get(kind, 422), f"{where} {predicate}.", param=_param(loc))


def _where(loc: tuple) -> str:
    """("messages", 0, "content") as "messages[0].content"."""
    text = ""
    for key in loc:
        text += f"[{key}]" if isinstance(key, int) else f".{key}" if text else str(key)
    return text


def _param(loc: tuple) -> str | None:
    """The parameter an error points at: a field, or the item of a list ("messages[0]")."""
    for at, key in enumerate(loc):
        if isinstance(key, int):
            return _where(loc[: at + 1])
    return _where(loc) or None


def setting(bound: object) -> Any:
    """A bound as given, or, named by a string, the running server's setting."""
    return getattr(serving.config(), bound) if isinstance(bound, str) else bound


@dataclass(frozen=True)
class Must:
    """Any problem with the value (its type, its choices, anything in it) reads
    "<where> must be <phrase>.": for a leaf, or a part every problem of which is
    best said in one sentence. A list of models takes Items, whose models name
    their own problems."""

    phrase: str

    def __get_pydantic_core_schema__(self, source: Any, handler) -> core_schema.CoreSchema:
        def check(value: object, inner) -> object:
            try:
                return inner(value)
            except ValidationError:
                raise invalid(f"must be {self.phrase}") from None

        return core_schema.no_info_wrap_validator_function(check, handler(source))


@dataclass(frozen=True)
class Items:
    """A list of `noun`s (or None, where the field allows it), from `at_least` up to
    `at_most` long (a number, or a setting's name); its items name their own problems."""

    noun: str
    at_least: int = 0
    at_most: int | str | None = None
    phrase: str = ""  # what the value must be, if not "a list of <noun>s"

    def __get_pydantic_core_schema__(self, source: Any, handler) -> core_schema.CoreSchema:
        nullable = type(None) in get_args(source)

        def check(value: object, inner) -> object:
            if not isinstance(value, list) and not (value is None and nullable):
                raise invalid(f"must be {self.phrase or f'a list of {self.noun}s'}")
            items = inner(value)
            if items is None:
                return items
            most = setting(self.at_most)
            if len(items) < self.at_least:
                many = "one" if self.at_least == 1 else f"{self.at_least:,}"
                raise invalid(f"must hold at least {many} {self.noun}")
            if most is not None and len(items) > most:
                raise invalid(
                    f"holds {len(items):,} {self.noun}s; at most {most:,} are allowed",
                )
            return items

        return core_schema.no_info_wrap_validator_function(check, handler(source))

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler) -> dict:
        described = handler(schema)
        array = next(
            (s for s in described.get("anyOf", [described]) if s.get("type") == "array"), None
        )
        if array is not None:
            if self.at_least:
                array["minItems"] = self.at_least
            if self.at_most is not None:
                array["maxItems"] = setting(self.at_most)
        return described


@dataclass(frozen=True)
class Bounded:
    """A number from `low` up to `high` (a number, or a setting's name), above `low`
    if `low_open`; a whole number if `integer`. JSON's true and false are not numbers,
    nor are NaN and the infinities Python's JSON parser takes."""

    low: float
    high: float | str
    integer: bool = False
    low_open: bool = False

    def __get_pydantic_core_schema__(self, source: Any, handler) -> core_schema.CoreSchema:
        number = core_schema.no_info_plain_validator_function(self.check)
        return core_schema.nullable_schema(number) if type(None) in get_args(source) else number

    def check(self, value: object) -> float:
        kinds = (int,) if self.integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            raise invalid("must be a whole number" if self.integer else "must be a number")
        high = setting(self.high)
        low = self.low
        if not math.isfinite(value) or not low <= value <= high or (self.low_open and value == low):
            opener = "above" if self.low_open else "from"
            raise invalid(f"must be {opener} {low} up to {high}")
        return value

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler) -> dict:
        kind = "integer" if self.integer else "number"
        return {
            "type": [kind, "null"] if schema["type"] == "nullable" else kind,
            "exclusiveMinimum" if self.low_open else "minimum": self.low,
            "maximum": setting(self.high),
        }


@dataclass(frozen=True)
class Longest:
    """A text of at most a setting's number of characters; a longer one is too large (413)."""

    name: str

    def __get_pydantic_core_schema__(self, source: Any, handler) -> core_schema.CoreSchema:
        def check(text: str) -> str:
            longest = setting(self.name)
            if len(text) > longest:
                raise PydanticCustomError("too_large", f"is longer than {longest:,} characters")
            return text

        return core_schema.no_info_after_validator_function(check, handler(source))

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler) -> dict:
        return {**handler(schema), "maxLength": setting(self.name)}
