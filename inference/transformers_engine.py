"""The Transformers engine: runs wherever PyTorch runs (CPU, CUDA, Apple silicon)."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image
from transformers import (
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoProcessor,
    AutoTokenizer,
    StoppingCriteria,
    StoppingCriteriaList,
)
from transformers.generation.streamers import BaseStreamer
from transformers.utils import logging as transformers_logging

from inference.engine import (
    Delta,
    Engine,
    EngineError,
    Event,
    Finished,
    GenerationRequest,
)
from inference.registry import ModelSpec
from inference.thinking import ThoughtSplitter

log = logging.getLogger(__name__)
# Loading bars are for notebooks; the server's console keeps to its own log lines.
transformers_logging.disable_progress_bar()

# MedGemma 27B thinks aloud when its system prompt starts with this line
# (Google's model card); the trace comes back between <unused94>/<unused95>.
THINKING_INSTRUCTION = "SYSTEM INSTRUCTION: think silently if needed."


def pick_device_and_dtype() -> tuple[str, torch.dtype]:
    """bf16 on GPUs that support it, else float32: Gemma overflows in fp16."""
    if torch.cuda.is_available():
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
        return "cuda", dtype
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps", torch.float32
    return "cpu", torch.float32


class TransformersEngine(Engine):
    name = "transformers"

    def __init__(
        self, model_dir: Path, spec: ModelSpec, *, max_model_len: int, quantize: bool
    ) -> None:
        self.model_dir = model_dir
        self.spec = spec
        self.max_model_len = max_model_len
        self.quantize = quantize
        self.device, self.dtype = pick_device_and_dtype()
        self.quantized = False
        self.processor = None
        self.tokenizer = None
        self.model = None

    def load(self) -> None:
        kwargs: dict = {"dtype": self.dtype}
        if self.quantize:
            kwargs.update(self._quantization_kwargs())
        model_class = AutoModelForImageTextToText if self.spec.multimodal else AutoModelForCausalLM
        if self.spec.multimodal:
            self.processor = AutoProcessor.from_pretrained(self.model_dir)
            self.tokenizer = self.processor.tokenizer
        else:
            self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        model = model_class.from_pretrained(self.model_dir, **kwargs)
        if not self.quantized:
            model = model.to(self.device)
        self.model = model.eval()
        log.info(
            "Loaded %s on %s (%s%s)",
            self.spec.label,
            self.device,
            str(self.dtype).removeprefix("torch."),
            ", 4-bit NF4" if self.quantized else "",
        )

    def _quantization_kwargs(self) -> dict:
        """4-bit NF4 through bitsandbytes, only where it can run; else say why."""
        if self.device != "cuda":
            log.warning(
                "-q/--quantize needs an NVIDIA GPU with CUDA; this machine has none, "
                "so the model loads unquantized."
            )
            return {}
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            log.warning(
                "-q/--quantize needs bitsandbytes, which is not installed "
                "(pip install 'medserver[quantize]'); the model loads unquantized."
            )
            return {}
        from transformers import BitsAndBytesConfig

        self.quantized = True
        return {
            "quantization_config": BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_compute_dtype=self.dtype,
            ),
            "device_map": "cuda",
        }

    def describe(self) -> dict[str, str]:
        return {
            "device": self.device,
            "dtype": str(self.dtype).removeprefix("torch."),
            "quantization": "nf4" if self.quantized else "none",
        }

    def generate(
        self,
        request: GenerationRequest,
        emit: Callable[[Event], None],
        should_stop: Callable[[], bool],
    ) -> None:
        started = time.perf_counter()
        inputs = self._encode(request)
        prompt_tokens = int(inputs["input_ids"].shape[-1])
        room = self.max_model_len - prompt_tokens
        if room < 1:
            raise EngineError(
                f"This conversation is {prompt_tokens} tokens long and the model's context "
                f"holds {self.max_model_len}. Start a new chat or delete earlier messages."
            )
        max_new_tokens = min(request.sampling.max_new_tokens, room)
        streamer = _EventStreamer(self.tokenizer, emit, started)
        sampling = request.sampling
        options = {"do_sample": sampling.temperature > 0}
        if sampling.ignore_eos:
            options["min_new_tokens"] = max_new_tokens
        if sampling.temperature > 0:
            options.update(temperature=sampling.temperature, top_p=sampling.top_p)
        else:
            options.update(temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            output = self.model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                streamer=streamer,
                stopping_criteria=StoppingCriteriaList([_StopWhen(should_stop)]),
                pad_token_id=self.tokenizer.pad_token_id,
                **options,
            )
        streamer.flush()
        completion_tokens = int(output.shape[-1]) - prompt_tokens
        if should_stop():
            reason = "cancelled"
        elif completion_tokens >= max_new_tokens and not streamer.saw_eos(self._eos_ids()):
            reason = "length"
        else:
            reason = "stop"
        emit(
            Finished(
                reason=reason,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                first_token_seconds=streamer.first_token_seconds,
                total_seconds=time.perf_counter() - started,
            )
        )

    def _eos_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        return set(eos if isinstance(eos, list) else [eos] if eos is not None else [])

    def _encode(self, request: GenerationRequest) -> dict:
        """Render the conversation with the model's own chat template."""
        has_images = any(turn.images for turn in request.turns)
        if has_images and not self.spec.multimodal:
            raise EngineError(
                f"{self.spec.label} reads text only; remove the images or serve a "
                "multimodal model (-m 4 or -m 27)."
            )
        messages = [self._message(turn) for turn in request.turns]
        if request.thinking and self.spec.can_think:
            messages = _with_thinking_instruction(messages)
        template_owner = self.processor or self.tokenizer
        inputs = template_owner.apply_chat_template(
            messages,
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            # User text that spells a control token (<end_of_turn>...) stays text.
            sanitize_control_tokens=True,
        )
        inputs = {key: value.to(self.model.device) for key, value in inputs.items()}
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        return inputs

    def _message(self, turn) -> dict:
        content: list[dict] = []
        for number, source in enumerate(turn.images, start=1):
            opened = io.BytesIO(source) if isinstance(source, bytes) else source
            try:
                with Image.open(opened) as image:
                    content.append({"type": "image", "image": image.convert("RGB")})
            except OSError as error:
                raise EngineError(f"Attached image {number} could not be read.") from error
        content.append({"type": "text", "text": turn.text})
        return {"role": turn.role, "content": content}


def _with_thinking_instruction(messages: list[dict]) -> list[dict]:
    if messages and messages[0]["role"] == "system":
        first = messages[0]
        text = {"type": "text", "text": THINKING_INSTRUCTION + "\n"}
        return [{"role": "system", "content": [text, *first["content"]]}, *messages[1:]]
    system = {"role": "system", "content": [{"type": "text", "text": THINKING_INSTRUCTION}]}
    return [system, *messages]


class _StopWhen(StoppingCriteria):
    """Stops generation between two tokens when the request is cancelled."""

    def __init__(self, should_stop: Callable[[], bool]) -> None:
        self.should_stop = should_stop

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        stop = self.should_stop()
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


class _EventStreamer(BaseStreamer):
    """Turns generated token ids into Delta events, as text becomes printable.

    Decodes a sliding window (prefix/read offsets) so each token costs the
    same however long the answer grows, and holds back bytes of a character
    that is not complete yet.
    """

    def __init__(self, tokenizer, emit: Callable[[Event], None], started: float) -> None:
        self.tokenizer = tokenizer
        self.emit = emit
        self.started = started
        self.first_token_seconds: float | None = None
        self.ids: list[int] = []
        self.prefix_offset = 0
        self.read_offset = 0
        self.splitter = ThoughtSplitter()
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True  # generate() first hands over the prompt
            return
        if self.first_token_seconds is None:
            self.first_token_seconds = time.perf_counter() - self.started
        self.ids.extend(int(t) for t in value.reshape(-1).tolist())
        decode = self.tokenizer.decode
        prefix = decode(self.ids[self.prefix_offset : self.read_offset], skip_special_tokens=True)
        full = decode(self.ids[self.prefix_offset :], skip_special_tokens=True)
        if len(full) > len(prefix) and not full.endswith("\ufffd"):
            self._send(full[len(prefix) :])
            self.prefix_offset = self.read_offset
            self.read_offset = len(self.ids)

    def end(self) -> None:
        """generate() calls this when it is done; the engine flushes afterwards."""

    def flush(self) -> None:
        prefix = self.tokenizer.decode(
            self.ids[self.prefix_offset : self.read_offset], skip_special_tokens=True
        )
        full = self.tokenizer.decode(self.ids[self.prefix_offset :], skip_special_tokens=True)
        if len(full) > len(prefix):
            self._send(full[len(prefix) :])
        self.read_offset = len(self.ids)
        for kind, text in self.splitter.flush():
            self.emit(Delta(kind, text))

    def saw_eos(self, eos_ids: set[int]) -> bool:
        return bool(self.ids) and self.ids[-1] in eos_ids

    def _send(self, text: str) -> None:
        for kind, piece in self.splitter.feed(text):
            self.emit(Delta(kind, piece))
