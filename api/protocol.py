"""MedServer's own request bodies, one typed model per endpoint (as vLLM's protocol.py):
each checks a body, describes it in the OpenAPI document (api.schema builds
the document from the models) and turns itself into the ChatCall the engine runs.
The OpenAI-compatible bodies are in api.openai_protocol.

`Model.of(data)` raises ApiError for the first problem (api.fields).
What JSON Schema cannot say (the order of roles, what an image holds) is
checked on the way to the engine, by api.conversation. A model's
docstring and its fields' descriptions are the document's: they speak to
clients.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticUseDefault
from typing_extensions import Self

from api import message_images
from api.conversation import ChatCall, RawTurn, check_turns
from api.end_users import end_user_of
from api.errors import ApiError
from api.fields import Bounded, Items, Longest, Must, api_error
from chat import serving
from imaging.dicom.windows import AUTO, WINDOW_CHOICES
from inference.engine import DEFAULT_TOP_K, ChatTurn, Sampling

MAX_STOP_SEQUENCES = 4


class Body(BaseModel):
    """A request body's fields, checked strictly: "10" is no number, nor 1 true."""

    model_config = ConfigDict(strict=True)

    @model_validator(mode="before")
    @classmethod
    def _missing_is_null(cls, data: Any) -> Any:
        # A required field left out is refused as a null would be, by its own message.
        if isinstance(data, dict):
            required = {name: None for name, f in cls.model_fields.items() if f.is_required()}
            return {**required, **data}
        return data

    @classmethod
    def of(cls, data: dict) -> Self:
        """The body `data` holds; raise ApiError for its first problem."""
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            raise api_error(error) from None


DataUri = Annotated[
    str,
    Must("a data URI string"),
    Field(
        description="A base64 data URI: a PNG, JPEG or WebP image (data:image/png;base64,...), "
        "a PDF (data:application/pdf;base64,...: its pages become images, each labelled "
        "'Document page 1 of 3'), a DICOM file (data:application/dicom;base64,...) or a zip "
        "of DICOM files (data:application/zip;base64,...). The DICOM files of one message are "
        "read together, become PNG slices each followed by its label for the model, and a "
        "series longer than fits is sampled evenly. URLs are not fetched."
    ),
]
WINDOW_TEXT = (
    "The window for DICOM images. auto: for CT, MedGemma 1.5's three CT windows as red, "
    "green and blue; other modalities their file's window. file: the file's window (else "
    "its range). lung, mediastinum, bone, brain: CT presets (other modalities keep their "
    "own window)."
)
Window = Annotated[
    Literal[tuple(WINDOW_CHOICES)],
    Must(f"one of {', '.join(WINDOW_CHOICES)}"),
    Field(description=WINDOW_TEXT),
]
Tokens = Annotated[int | None, Bounded(1, "max_model_len", integer=True)]
Temperature = Annotated[float | None, Bounded(0.0, 2.0)]
TopP = Annotated[float | None, Bounded(0.0, 1.0, low_open=True)]
_END_USER_MUST = Must("a string naming the end user")
_END_USER_TEXT = Field(
    description="The end user, as a front end names them; recorded in the audit trail "
    "and the answer's provenance (as are Open WebUI's X-OpenWebUI-User-* headers)"
)
EndUserName = Annotated[str | None, _END_USER_MUST, _END_USER_TEXT]
_StopText = Annotated[str, Field(min_length=1, max_length=200)]
Stop = Annotated[
    _StopText | Annotated[list[_StopText], Field(max_length=MAX_STOP_SEQUENCES)] | None,
    Must(f"a string or a list of up to {MAX_STOP_SEQUENCES}"),
]


def sampling(
    max_tokens: int | None,
    temperature: float | None,
    top_p: float | None,
    top_k: int | None = None,
    stop: str | list[str] | None = None,
    ignore_eos: bool = False,
) -> Sampling:
    """The sampling settings asked for (checked by the fields above), the server's
    defaults for the rest; only the server's own when it lets no client choose."""
    config = serving.config()
    if not config.allow_client_sampling_config:
        temperature, top_p, top_k = None, None, None
    return Sampling(
        max_tokens or config.max_new_tokens or serving.served_model().answer_tokens,
        config.default_temperature if temperature is None else temperature,
        config.default_top_p if top_p is None else top_p,
        # vLLM's and SGLang's extension; -1 (their spelling) or 0: no limit.
        top_k=DEFAULT_TOP_K if top_k is None else max(top_k, 0),
        stop=(stop,) if isinstance(stop, str) else tuple(stop or ()),
        ignore_eos=ignore_eos,
    )


class ChatBody(Body):
    """The fields every chat body shares: sampling, streaming, the DICOM window, the end user."""

    temperature: Temperature = None
    top_p: TopP = None
    top_k: Annotated[
        int | None,
        Bounded(-1, 1_000_000, integer=True),
        Field(
            description="Sample from the k likeliest tokens; -1 or 0: no limit. "
            "Default 64, MedGemma's own."
        ),
    ] = None
    stop: Stop = None
    ignore_eos: bool = Field(
        False,
        description="Write max_tokens tokens even past the end of the answer "
        "(as vLLM and SGLang; for benchmarks)",
    )
    stream: bool = False
    dicom_window: Window = AUTO
    user: EndUserName = None

    def chat_call(
        self,
        request,
        raw_turns: list[RawTurn],
        *,
        max_tokens: int | None,
        thinking: bool,
        continue_answer: bool = False,
    ) -> ChatCall:
        """The call for `raw_turns`, checked as a conversation and its images decoded:
        call it off the event loop. Raise ApiError for what the conversation breaks."""
        asked = sampling(
            max_tokens, self.temperature, self.top_p, self.top_k, self.stop, self.ignore_eos
        )
        turns, notices = check_turns(
            raw_turns,
            answer_tokens=asked.max_new_tokens,
            window=self.dicom_window,
            continue_answer=continue_answer,
        )
        return ChatCall(
            turns,
            asked,
            thinking,
            self.stream,
            notices,
            end_user_of(request, self.user),
            continue_answer=continue_answer,
        )


class ChatMessage(Body):
    role: Annotated[Literal["system", "user", "assistant"], Must("system, user or assistant")]
    content: str = ""
    image_data: Annotated[list[DataUri] | None, Items("data URI")] = None


class ChatRequest(ChatBody):
    """/api/chat: a conversation (an optional system message, then user and assistant in
    turn, ending with the user), answered whole or, with stream=true, as Server-Sent Events."""

    messages: Annotated[
        list[ChatMessage], Items("message", at_least=1, at_most="max_history_messages")
    ]
    max_tokens: Tokens = None
    thinking: bool = True

    def to_chat_call(self, request) -> ChatCall:
        """The call this body asks for; decodes its images, so call it off the event loop."""
        raw_turns = [
            RawTurn(
                message.role, message.content, tuple(message.image_data or ()), f"messages[{n}]"
            )
            for n, message in enumerate(self.messages)
        ]
        return self.chat_call(
            request, raw_turns, max_tokens=self.max_tokens, thinking=self.thinking
        )


def _blank_is_default(value: object) -> object:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise PydanticUseDefault()
    return value


def _form_flag(value: object) -> object:
    """A form's "true" or "false" (any case) as true or false; left empty, the default."""
    value = _blank_is_default(value)
    word = value.strip().lower() if isinstance(value, str) else value
    return {"true": True, "false": False}.get(word, value)


def _form_number(value: object) -> object:
    """A form's number as a number (a whole one if it reads as one); left empty, the default."""
    value = _blank_is_default(value)
    for kind in (int, float):
        try:
            return kind(value)
        except (TypeError, ValueError):
            pass
    return value


FormBlank = BeforeValidator(_blank_is_default)
FormFlag = BeforeValidator(_form_flag)
FormNumber = BeforeValidator(_form_number)
_UPLOADS = {
    "type": "array",
    "items": {"type": "string", "format": "binary"},
    "minItems": 1,
    "description": "PNG, JPEG or WebP images, PDFs, DICOM files, zips of DICOM files",
}


class AnalyzeForm(Body):
    """/api/analyze: images, PDFs or DICOM series with a prompt, as a multipart form."""

    images: Annotated[list[Any], Items("image", at_least=1), WithJsonSchema(_UPLOADS)]
    prompt: Annotated[
        str,
        StringConstraints(strip_whitespace=True, pattern=r"\S"),
        Must("the question or instruction, not blank"),
        Longest("max_text_length"),
    ]
    dicom_window: Annotated[
        Window,
        FormBlank,
        WithJsonSchema({"enum": [*WINDOW_CHOICES, ""], "description": WINDOW_TEXT}),
    ] = AUTO
    stream: Annotated[bool, FormFlag] = False
    thinking: Annotated[bool, FormFlag] = True
    # A number in a form is sent or left out, never null: so the document says.
    max_tokens: Annotated[int, Bounded(1, "max_model_len", integer=True), FormNumber] = None
    temperature: Annotated[float, Bounded(0.0, 2.0), FormNumber] = None
    top_p: Annotated[float, Bounded(0.0, 1.0, low_open=True), FormNumber] = None
    user: Annotated[str, _END_USER_MUST, _END_USER_TEXT] = None

    def to_chat_call(self, request) -> ChatCall:
        """The call this form asks for; reads and decodes its files, so call it off the
        event loop. Raise ApiError for a model that reads no images, or files refused."""
        if not serving.served_model().multimodal:
            raise ApiError(422, "The model served reads text only; it cannot analyze images.")
        asked = sampling(self.max_tokens, self.temperature, self.top_p)
        parts = [
            message_images.part_from_upload(upload, f"upload {n}")
            for n, upload in enumerate(self.images, 1)
        ]
        images = message_images.message_images(
            parts,
            where="The request",
            param="images",
            answer_tokens=asked.max_new_tokens,
            window=self.dicom_window,
        )
        return ChatCall(
            turns=(ChatTurn("user", self.prompt, images.images, images.labels),),
            sampling=asked,
            thinking=self.thinking,
            stream=self.stream,
            notices=images.notices,
            end_user=end_user_of(request, self.user),
        )
