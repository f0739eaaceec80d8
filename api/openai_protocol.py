"""The OpenAI-compatible request bodies, /v1/chat/completions and /v1/responses:
one typed model each, as in api.protocol, with the OpenAI parameters
MedServer cannot honour as fields that refuse them (api.unsupported).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, create_model, field_validator
from pydantic_core import PydanticCustomError, core_schema

from api import unsupported
from api.conversation import ChatCall, RawTurn
from api.fields import Items, Must
from api.protocol import Body, ChatBody, DataUri, Tokens
from chat import serving
from imaging import dicom


class ServedModel:
    """The model served, by its API id or its key; any other name is not found (404)."""

    def __get_pydantic_core_schema__(self, source: Any, handler) -> core_schema.CoreSchema:
        def check(model: object) -> str:
            spec = serving.served_model()
            if model not in (spec.api_id, spec.key):
                raise PydanticCustomError(
                    "model_not_found",
                    f"The model {model!r} is not served here; this server runs {spec.api_id!r}.",
                )
            return spec.api_id

        return core_schema.no_info_plain_validator_function(check)

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler) -> dict:
        spec = serving.served_model()
        return {
            "type": "string",
            "enum": sorted({spec.api_id, spec.key}),
            "description": "The model served (any other name: 404)",
        }


def _data_uri(data: str, filename: str | None) -> str:
    """A file's data as a data URI: OpenAI's clients send it as one, or as bare
    base64 beside a filename (a .dcm name says DICOM)."""
    if data.startswith("data:"):
        return data
    name = (filename or "").lower()
    media_type = (
        "application/dicom" if name.endswith(dicom.SUFFIXES) else "application/octet-stream"
    )
    return f"data:{media_type};base64,{data}"


def _text_as_part(part_type: str, *, none_is_empty: bool = True):
    """Content sent as a string is one text part; none (where `none_is_empty`), no
    parts; anything else as it is, to be checked."""

    def read(content: object) -> object:
        if content is None and none_is_empty:
            return []
        return [{"type": part_type, "text": content}] if isinstance(content, str) else content

    return read


class ThinkingSwitches(Body):
    """The ways OpenAI-style clients turn thinking off."""

    reasoning_effort: str | None = Field(None, description="none or minimal: no thinking")
    chat_template_kwargs: dict[str, Any] | None = Field(
        None, description="enable_thinking: false turns thinking off, as in vLLM"
    )

    def thinking_wanted(self) -> bool:
        if self.reasoning_effort in ("none", "minimal"):
            return False
        return (self.chat_template_kwargs or {}).get("enable_thinking") is not False


# --- /v1/chat/completions


class TextPart(Body):
    type: Literal["text"]
    text: str


class ImageUrl(Body):
    url: DataUri
    detail: object = None


class ImageUrlPart(Body):
    type: Literal["image_url"]
    image_url: DataUri | ImageUrl

    def uri(self) -> str:
        return self.image_url if isinstance(self.image_url, str) else self.image_url.url


class FileData(Body):
    file_data: str
    filename: str | None = None


class FilePart(Body):
    type: Literal["file"]
    file: FileData


Part = Annotated[
    TextPart | ImageUrlPart | FilePart,
    Field(discriminator="type"),
    Must(
        "a text part, an image_url part with a data URI, or a file part with its file_data "
        "(MedServer keeps no uploaded files)"
    ),
]


class OpenAIMessage(Body):
    role: Annotated[
        Literal["system", "developer", "user", "assistant"],
        Must("system, developer, user or assistant"),
    ]
    content: Annotated[
        list[Part],
        Items("part", phrase="a string or a list of parts"),
        BeforeValidator(_text_as_part("text"), json_schema_input_type=str | list[Part] | None),
    ] = []
    name: object = None

    def raw_turn(self, where: str) -> RawTurn:
        texts = [part.text for part in self.content if isinstance(part, TextPart)]
        images = [
            part.uri()
            if isinstance(part, ImageUrlPart)
            else _data_uri(part.file.file_data, part.file.filename)
            for part in self.content
            if not isinstance(part, TextPart)
        ]
        role = "system" if self.role == "developer" else self.role
        return RawTurn(role, "\n".join(texts), tuple(images), where)


class StreamOptions(Body):
    include_usage: bool = False


class OpenAIChatFields(ChatBody, ThinkingSwitches):
    model: Annotated[str, ServedModel()]
    messages: Annotated[
        list[OpenAIMessage], Items("message", at_least=1, at_most="max_history_messages")
    ]
    max_tokens: Tokens = None
    max_completion_tokens: Tokens = None
    stream_options: StreamOptions | None = None
    continue_final_message: bool = Field(
        False,
        description="As in vLLM and SGLang: with add_generation_prompt false, write on from "
        "a last assistant message (one cut off at max_tokens).",
    )
    # Checked when left out too: continuing an answer needs it false, said so.
    add_generation_prompt: bool = Field(True, validate_default=True)
    tools: object = Field(None, description="Accepted; the model never calls a tool")

    @field_validator("add_generation_prompt")
    @classmethod
    def _continuing_adds_no_prompt(cls, add: bool, info) -> bool:
        if add and info.data.get("continue_final_message"):
            raise PydanticCustomError(
                "refused", "continue_final_message needs add_generation_prompt: false."
            )
        return add

    def to_chat_call(self, request) -> ChatCall:
        """The call this body asks for; decodes its images, so call it off the event loop."""
        raw_turns = [message.raw_turn(f"messages[{n}]") for n, message in enumerate(self.messages)]
        go_on = self.continue_final_message
        return self.chat_call(
            request,
            raw_turns,
            max_tokens=self.max_completion_tokens or self.max_tokens,
            # Continuing an answer goes on from its text: past any thinking.
            thinking=self.thinking_wanted() and not go_on,
            continue_answer=go_on,
        )


OpenAIChatRequest = create_model(
    "OpenAIChatRequest",
    __base__=OpenAIChatFields,
    __doc__="OpenAI's chat completion request. Other OpenAI fields are accepted and do "
    "nothing: parallel_tool_calls, store, metadata, service_tier. Thinking is off with "
    "reasoning_effort none or minimal, or chat_template_kwargs.enable_thinking false.",
    **unsupported.fields(unsupported.CHAT_COMPLETIONS),
)


# --- /v1/responses

_ROLES = {"developer": "system"}


class InputText(Body):
    type: Literal["input_text", "output_text"]
    text: str


class InputImage(Body):
    type: Literal["input_image"]
    image_url: DataUri
    detail: object = None


class InputFile(Body):
    type: Literal["input_file"]
    file_data: str
    filename: str | None = None


InputPart = Annotated[
    InputText | InputImage | InputFile,
    Field(discriminator="type"),
    Must(
        "an input_text part, or an input_image or input_file part with its data inline "
        "(image_url or file_data as a data URI; MedServer keeps no uploaded files)"
    ),
]


class InputMessage(Body):
    type: Literal["message"] = "message"
    role: Annotated[
        Literal["user", "assistant", "system", "developer"],
        Must("user, assistant, system or developer"),
    ]
    content: Annotated[
        list[InputPart],
        Items("part", phrase="a string or a list of parts"),
        # Required, as OpenAI has it: a message item without content is refused.
        BeforeValidator(
            _text_as_part("input_text", none_is_empty=False),
            json_schema_input_type=str | list[InputPart],
        ),
    ]

    def raw_turn(self, where: str) -> RawTurn:
        texts = [part.text for part in self.content if isinstance(part, InputText)]
        images = [
            part.image_url
            if isinstance(part, InputImage)
            else _data_uri(part.file_data, part.filename)
            for part in self.content
            if not isinstance(part, InputText)
        ]
        return RawTurn(_ROLES.get(self.role, self.role), "\n".join(texts), tuple(images), where)


class ReasoningItem(Body):
    """An earlier answer's thinking, sent back: the model is not shown it."""

    type: Literal["reasoning"]


def _message_or_none(item: object) -> object:
    """A message item as it is; a reasoning item as None (skipped); any other refused."""
    if not isinstance(item, dict):
        return item
    kind = item.get("type", "message")
    if kind == "reasoning":
        return None
    if kind != "message":
        raise PydanticCustomError(
            "unsupported", f"MedServer takes messages only, not {str(kind)[:40]!r} items."
        )
    return item


Item = Annotated[
    InputMessage | None,
    BeforeValidator(_message_or_none, json_schema_input_type=InputMessage | ReasoningItem),
]


def _text_as_input(value: object) -> object:
    return [{"role": "user", "content": value}] if isinstance(value, str) else value


class ResponseFields(ChatBody, ThinkingSwitches):
    model: Annotated[str, ServedModel()]
    input: Annotated[
        list[Item],
        Items("item", at_least=1, phrase="a string or a list of messages"),
        BeforeValidator(
            _text_as_input, json_schema_input_type=str | list[InputMessage | ReasoningItem]
        ),
    ]
    instructions: Annotated[str | None, Must("a string")] = None
    max_output_tokens: Tokens = None
    reasoning: dict[str, Any] | None = Field(
        None, description="effort none or minimal: no thinking"
    )
    metadata: dict[str, Any] | None = None
    tools: object = Field(None, description="Accepted; the model never calls a tool")

    def to_chat_call(self, request) -> ChatCall:
        """The call this body asks for; decodes its images, so call it off the event loop."""
        raw_turns = []
        if self.instructions is not None:
            raw_turns.append(RawTurn("system", self.instructions, (), "instructions"))
        raw_turns += [
            item.raw_turn(f"input[{n}]") for n, item in enumerate(self.input) if item is not None
        ]
        effort = (self.reasoning or {}).get("effort")
        return self.chat_call(
            request,
            raw_turns,
            max_tokens=self.max_output_tokens,
            thinking=effort not in ("none", "minimal") and self.thinking_wanted(),
        )


ResponseRequest = create_model(
    "ResponseRequest",
    __base__=ResponseFields,
    __doc__="OpenAI's Responses API request. store, include, truncation, "
    "parallel_tool_calls, service_tier are accepted and do nothing. Thinking is off with "
    "reasoning.effort none or minimal.",
    **unsupported.fields(unsupported.RESPONSES),
)
