"""A request rendered with the model's own chat template and processor.

The Transformers engine runs what this renders; the remote engines count it,
so that MedServer knows how long a prompt is before any server sees it (to
clamp the answer's budget to the context) and can check that the server
renders the same prompt (the same model and template).
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

from PIL import Image
from transformers import AutoProcessor, AutoTokenizer

from inference.engine import EngineError, GenerationRequest, ImageSource
from inference.prompting import build_messages, generation_prompt
from inference.registry import ModelSpec


class PromptEncoder:
    """The model's tokenizer (and image processor, for a multimodal model).

    Safe to call from several threads at once: the tokenizer and the image
    processor keep no state between calls.
    """

    def __init__(self, spec: ModelSpec, model_dir: Path) -> None:
        if spec.multimodal:
            self._use(spec, AutoProcessor.from_pretrained(model_dir))
        else:
            self._use(spec, AutoTokenizer.from_pretrained(model_dir))

    @classmethod
    def of(cls, spec: ModelSpec, processor) -> PromptEncoder:
        """An encoder around a processor (or, for a text-only model, a tokenizer)
        already in hand: for benchmarks that build the model from a config."""
        encoder = cls.__new__(cls)
        encoder._use(spec, processor)
        return encoder

    def _use(self, spec: ModelSpec, processor) -> None:
        self.spec = spec
        if spec.multimodal:
            self.processor, self.tokenizer = processor, processor.tokenizer
        else:
            self.processor, self.tokenizer = None, processor

    def encode(self, request: GenerationRequest) -> dict:
        """Return the prompt as model inputs (token ids, masks, pixel values)."""
        messages = build_messages(request, self.spec, _pil_image)
        template_owner = self.processor or self.tokenizer
        inputs = template_owner.apply_chat_template(
            messages,
            **generation_prompt(request),
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            # User text that spells a control token (<end_of_turn>...) stays text.
            sanitize_control_tokens=True,
        )
        return dict(inputs)

    def count(self, request: GenerationRequest, context: int) -> int:
        """Return the prompt's length in tokens; raise EngineError if it leaves no
        room for an answer in `context` tokens."""
        self.check_length(request, context)
        tokens = int(self.encode(request)["input_ids"].shape[-1])
        if tokens >= context:
            raise EngineError(too_long(str(tokens), context))
        return tokens

    def check_length(self, request: GenerationRequest, context: int) -> None:
        """Refuse, before tokenizing it, a conversation whose text alone is over
        `context` tokens: no token spells more than `max_token_chars`
        characters, so the text's length gives a lower bound on its tokens."""
        lower_bound = _text_length(request) // self.max_token_chars
        if lower_bound >= context:
            raise EngineError(too_long(f"at least {lower_bound}", context))

    @functools.cached_property
    def max_token_chars(self) -> int:
        """The most characters one token of the vocabulary spells."""
        return max(1, max((len(piece) for piece in self.tokenizer.get_vocab()), default=1))


def too_long(tokens: str, context: int) -> str:
    return (
        f"This conversation is {tokens} tokens long and the model's context holds "
        f"{context}. Start a new chat or delete earlier messages."
    )


def _text_length(request: GenerationRequest) -> int:
    return sum(len(turn.text) + sum(map(len, turn.image_labels)) for turn in request.turns)


def _pil_image(source: ImageSource, number: int) -> dict:
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            return {"type": "image", "image": image.convert("RGB")}
    except OSError as error:
        raise EngineError(f"Attached image {number} could not be read.") from error
