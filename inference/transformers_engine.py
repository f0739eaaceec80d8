"""The Transformers engine: runs wherever PyTorch runs (CPU, CUDA, Apple silicon)."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image
from transformers import (
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoProcessor,
    AutoTokenizer,
    GenerationConfig,
    LogitsProcessorList,
    StoppingCriteriaList,
)
from transformers.utils import logging as transformers_logging

from inference.batching import (
    Detokenizer,
    RowProgress,
    RowSampling,
    RowState,
    collate,
    finish,
)
from inference.engine import Engine, EngineError, GenerationRequest, ImageSource, Job
from inference.prompting import build_messages, generation_prompt
from inference.registry import ModelSpec

log = logging.getLogger(__name__)
# Loading bars are for notebooks; the server's console keeps to its own log lines.
transformers_logging.disable_progress_bar()


def pick_device_and_dtype() -> tuple[str, torch.dtype]:
    """bf16 on GPUs that support it, else float32: Gemma overflows in fp16."""
    if torch.cuda.is_available():
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
        return "cuda", dtype
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps", torch.float32
    return "cpu", torch.float32


def cpu_threads() -> int:
    """Threads for the model's arithmetic on CPU: every core this process may use but one.

    The spare core keeps the server's event loop, which sends the tokens, from
    competing with the model's threads; when it does, a thread of the model waits
    at every barrier for one the scheduler put aside, and a small model on two
    cores writes several times slower (bench/README.md has the figures).
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) - 1)


class TransformersEngine(Engine):
    name = "transformers"
    batched = True

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

    def run_batch(self, jobs: list[Job], should_yield: Callable[[], bool]) -> list[Job]:
        if self.device == "cpu" and torch.get_num_threads() != cpu_threads():
            # Per thread: set on the thread that generates, whichever it is.
            torch.set_num_threads(cpu_threads())
        active = [job for job in jobs if self._admit(job)]
        if not active:
            return []
        states: list[RowState] = [job.state for job in active]
        eos_ids = self._eos_ids()
        progress = RowProgress(active, states, set(eos_ids), should_yield)
        sampling = RowSampling(active, states, eos_ids)
        all_greedy = all(job.request.sampling.temperature == 0 for job in active)
        batch = collate(states, self.tokenizer.pad_token_id)
        room = max(s.max_new_tokens - len(s.generated) for s in states)
        # Sampling is done per row by RowSampling: neutral values keep the model's
        # own defaults (top-k, top-p, temperature) from applying on top. (top_k 50
        # is transformers' neutral value for greedy decoding; 0 turns it off.)
        config = GenerationConfig(
            max_new_tokens=room,
            do_sample=not all_greedy,
            temperature=1.0,
            top_p=1.0,
            top_k=50 if all_greedy else 0,
            eos_token_id=eos_ids,
            pad_token_id=self.tokenizer.pad_token_id,
            bos_token_id=self.tokenizer.bos_token_id,
        )
        with torch.inference_mode():
            self.model.generate(
                **{key: value.to(self.model.device) for key, value in batch.items()},
                generation_config=config,
                logits_processor=LogitsProcessorList([sampling]),
                stopping_criteria=StoppingCriteriaList([progress]),
            )
        unfinished = []
        for job, state in zip(active, states, strict=True):
            if state.reason is not None:
                continue  # finished (and told) during the batch
            if progress.paused:
                unfinished.append(job)
            else:  # generate() stopped at its own length limit
                state.reason = "length"
                finish(job, state)
        return unfinished

    def run_one(self, job: Job) -> None:
        pending = [job]
        while pending:
            pending = self.run_batch(pending, lambda: False)

    def _admit(self, job: Job) -> bool:
        """Encode a new job's prompt; refuse it (Failed) if it cannot be served."""
        if job.state is not None:
            return True
        try:
            prompt = self._encode(job.request)
        except EngineError as error:
            job.fail(str(error))
            return False
        prompt_tokens = int(prompt["input_ids"].shape[-1])
        room = self.max_model_len - prompt_tokens
        if room < 1:
            job.fail(
                f"This conversation is {prompt_tokens} tokens long and the model's context "
                f"holds {self.max_model_len}. Start a new chat or delete earlier messages."
            )
            return False
        job.state = RowState(
            prompt=prompt,
            prompt_tokens=prompt_tokens,
            max_new_tokens=min(job.request.sampling.max_new_tokens, room),
            detokenizer=Detokenizer(self.tokenizer),
        )
        return True

    def _eos_ids(self) -> list[int]:
        eos = self.model.generation_config.eos_token_id
        return list(eos if isinstance(eos, list) else [eos] if eos is not None else [])

    def _encode(self, request: GenerationRequest) -> dict:
        """Render the conversation with the model's own chat template."""
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
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        return dict(inputs)


def _pil_image(source: ImageSource, number: int) -> dict:
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            return {"type": "image", "image": image.convert("RGB")}
    except OSError as error:
        raise EngineError(f"Attached image {number} could not be read.") from error
