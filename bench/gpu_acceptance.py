"""The GPU acceptance run: one command, one 10-minute slot, no network, no web stack.

    python -m bench.gpu_acceptance                 # on an NVIDIA GPU (default bound: H200)
    python -m bench.gpu_acceptance --smoke         # tiny shapes on the CPU, in seconds

Drives MedServer's engine worker and Transformers engine in this process (no
Django, no WebSocket or SSE client) on a random-weight model of MedGemma 1.5
4B's shape in bf16, built on the GPU (nothing is downloaded; the demo model's
tokenizer gives the token ids). Prints, section by section as each is measured
(so that a run cut short keeps what it measured):

1. fidelity, from the prompt tokens the engine reports: a system prompt adds
   as many tokens with thinking on as off, an image adds about its image
   tokens, three images three times that (exit status 1 if one fails);
2. decode tokens/s of one stream, of Transformers' generate alone and of the
   engine worker, against the memory-bandwidth bound (the weights one decode
   step reads / the bandwidth: --bandwidth-gbs, H200's 4800 GB/s by default,
   and the bandwidth of a large device copy, measured);
3. aggregate tokens/s and time to first token of 1, 4 and 8 streams;
4. a newcomer joining running streams, each row a long prompt with 4 images:
   its time to first token and the longest stall of the running streams while
   it joins, with the batch one short of full (the newcomer fills it) and full
   (the newcomer is one more).

--smoke runs the same code on the CPU with the demo model's tiny sizes and
short answers; its figures mean nothing, it proves the run works end to end.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import io
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from bench.gpu import measured_bandwidth
from bench.model_shapes import (
    MEDGEMMA_4B,
    TINY,
    Shape,
    build_model,
    gemma3_config,
    gemma3_processor,
    weight_bytes,
)
from bench.report import machine, median, table

GB = 1e9
SYSTEM_PROMPT = (
    "You are a radiologist at a district hospital. Answer in French, in short numbered "
    "findings, then one line of impression; say plainly when an image is not diagnostic."
)
QUESTION = "Findings?"
# A sentence in the demo tokenizer's own words, repeated to make long prompts.
FILLER = "The patient has a cough and fever. The chest film shows the heart and lungs. "


@dataclass(frozen=True)
class Plan:
    """How much of everything: the GPU run's sizes, or the smoke run's."""

    shape: Shape
    device: str
    tokens: int  # tokens per answer in the decode and streams sections
    reps: int
    streams: tuple[int, ...]
    prompt_tokens: int  # text tokens of each joining-section prompt (images come on top)
    images_per_row: int
    running_tokens: int  # what the running rows are asked to write while the newcomer joins
    newcomer_tokens: int
    max_batch_size: int = 8


GPU_PLAN = Plan(MEDGEMMA_4B, "cuda", 128, 3, (1, 4, 8), 2000, 4, 384, 16)
SMOKE_PLAN = Plan(TINY, "cpu", 12, 1, (1, 4, 8), 48, 4, 40, 4)


@dataclass
class Record:
    """One answer as the caller saw it: when each delivery of text arrived."""

    started: float
    deliveries: list[float] = field(default_factory=list)
    ended: float | None = None
    prompt_tokens: int = 0
    tokens: int = 0
    failure: str = ""

    @property
    def ttft_ms(self) -> float:
        first = self.deliveries[0] if self.deliveries else self.ended or self.started
        return (first - self.started) * 1000

    @property
    def decode_rate(self) -> float:
        """Tokens after the first / time from the first delivery to the end."""
        if not self.deliveries or self.tokens < 2 or self.ended <= self.deliveries[0]:
            return float("nan")
        return (self.tokens - 1) / (self.ended - self.deliveries[0])

    def longest_gap_ms(self, since: float, until: float) -> float:
        """The longest wait between two deliveries (or a delivery and `until`) after `since`."""
        times = [t for t in self.deliveries if t >= since] + [min(until, self.ended or until)]
        marks = [since, *times]
        return max((b - a) * 1000 for a, b in zip(marks, marks[1:], strict=False))


async def answer(worker, request, record: Record | None = None, handles: list | None = None):
    """Run one request through the worker; fill and return its Record."""
    from inference.engine import Delta, Failed, Finished

    record = record or Record(time.perf_counter())
    handle = worker.submit(request)
    if handles is not None:
        handles.append(handle)
    async for event in handle.events():
        if isinstance(event, Delta):
            record.deliveries.append(time.perf_counter())
        elif isinstance(event, Finished):
            record.ended = time.perf_counter()
            record.prompt_tokens, record.tokens = event.prompt_tokens, event.completion_tokens
        elif isinstance(event, Failed):
            record.ended, record.failure = time.perf_counter(), event.message
    return record


def request(turns, tokens: int, *, thinking: bool = False):
    from inference.engine import GenerationRequest, Sampling

    return GenerationRequest(
        tuple(turns), Sampling(tokens, 0.0, 1.0, ignore_eos=True), thinking=thinking
    )


def user(text: str, images: int = 0, image: bytes = b""):
    from inference.engine import ChatTurn

    return ChatTurn("user", text, images=(image,) * images)


def png(size: int, seed: int = 0) -> bytes:
    """A noisy RGB image of `size` x `size` pixels, as PNG bytes."""
    from PIL import Image

    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (size, size, 3), dtype=torch.uint8, generator=generator)
    buffer = io.BytesIO()
    Image.fromarray(pixels.numpy()).save(buffer, format="PNG")
    return buffer.getvalue()


def long_text(tokenizer, tokens: int, seed: int) -> str:
    """About `tokens` tokens of text, different for each `seed` (no shared prefix)."""
    text = f"Case {seed}. "
    while len(tokenizer(text).input_ids) < tokens:
        text += FILLER
    return text


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def generate_rate(model, tokenizer, plan: Plan) -> float:
    """Decode tokens/s of Transformers' generate alone: (N - 1) / (time(N) - time(1))."""
    inputs = tokenizer("Signs of pneumothorax on a chest film?", return_tensors="pt")
    inputs = inputs.to(plan.device)

    def timed(n: int) -> float:
        sync(plan.device)
        started = time.perf_counter()
        with torch.inference_mode():
            model.generate(**inputs, max_new_tokens=n, min_new_tokens=n, do_sample=False)
        sync(plan.device)
        return time.perf_counter() - started

    timed(4)  # warm-up
    n = plan.tokens
    return median([(n - 1) / (timed(n) - timed(1)) for _ in range(plan.reps)])


def engine_worker(model, processor, spec, plan: Plan):
    """MedServer's engine worker serving `model` on its Transformers engine."""
    from inference.tokenizing import PromptEncoder
    from inference.transformers_engine import TransformersEngine
    from inference.worker import EngineWorker, WorkerLimits

    def load():
        engine = TransformersEngine(None, spec, max_model_len=16_384, quantize=False)
        engine.model, engine.tokenizer = model, processor.tokenizer
        engine.encoder = PromptEncoder.of(spec, processor)
        return engine

    limits = WorkerLimits(max_batch_size=plan.max_batch_size, max_queued=256, loop_guard=0)
    worker = EngineWorker(load, f"random {plan.shape.name}", limits).start()
    if not worker.wait_ready(600):
        raise RuntimeError(f"the engine did not load: {worker.state.reason}")
    return worker


class Run:
    """The sections, in order, each printed as soon as it is measured."""

    def __init__(self, args: argparse.Namespace, plan: Plan, scratch: Path) -> None:
        self.args, self.plan = args, plan
        self.started = time.monotonic()
        self.checks: list[list] = []
        from transformers import AutoProcessor

        from inference.demo_model import ensure_demo_model
        from inference.registry import MODELS

        self.tokenizer = AutoProcessor.from_pretrained(
            ensure_demo_model(scratch / "demo")
        ).tokenizer
        self.processor = gemma3_processor(plan.shape, self.tokenizer)
        base = MODELS["demo"] if plan.shape is TINY else MODELS["4"]
        # MedGemma 27B's thinking rules on the 4B's shape, so that thinking is checked too.
        self.spec = dataclasses.replace(base, can_think=True)
        self.image = png(plan.shape.image_size)

    def say(self, *lines: str) -> None:
        print("\n".join(lines), flush=True)

    def time_left(self) -> bool:
        if time.monotonic() - self.started < self.args.deadline_s:
            return True
        self.say(f"(skipped: past --deadline-s {self.args.deadline_s:.0f} s)")
        return False

    def build(self) -> None:
        plan = self.plan
        self.bandwidth = self.args.bandwidth_gbs * GB
        if plan.device == "cuda":
            progress("measuring the memory bandwidth ...")
            self.measured = measured_bandwidth()
        else:
            self.measured = float("nan")
        progress("building the model ...")
        built = time.monotonic()
        self.model = build_model(
            gemma3_config(plan.shape, self.tokenizer), self.tokenizer, plan.device
        )
        self.total, self.decode = weight_bytes(self.model)
        self.worker = engine_worker(self.model, self.processor, self.spec, plan)
        import transformers

        note = ""
        if not sanitizes_control_tokens():
            # Before 5.23 apply_chat_template ignores sanitize_control_tokens with a
            # warning on every request: the prompts are the same here (no user text
            # spells a control token), so the figures stand; the warnings go.
            transformers.logging.set_verbosity_error()
            note = (
                f"\nnote: transformers {transformers.__version__} predates 5.23, so user text that "
                "spells a control token is not escaped (MedServer needs 5.23); nothing measured "
                "here depends on it"
            )

        self.say(
            f"bench.gpu_acceptance: random-weight {plan.shape.name} shape, bf16, on {plan.device}"
            f"{' (--smoke: tiny shapes, figures mean nothing)' if self.args.smoke else ''}, "
            f"{plan.tokens} greedy tokens per answer, {plan.reps} repetitions, medians "
            f"({machine()}, transformers {transformers.__version__})",
            f"weights: {self.total / GB:.2f} GB in all, {self.decode / GB:.2f} GB read per "
            f"decode step; built and loaded in {time.monotonic() - built:.1f} s{note}",
        )

    def decode_section(self) -> None:
        plan = self.plan
        progress("decoding ...")
        alone = generate_rate(self.model, self.tokenizer, plan)
        runs = [
            asyncio.run(answer(self.worker, request([user(QUESTION)], plan.tokens)))
            for _ in range(plan.reps + 1)
        ][1:]  # the first warms up
        worker = median([r.decode_rate for r in runs])
        bound = self.bandwidth / self.decode
        bound_measured = self.measured / self.decode
        self.say(
            "",
            "2. decode, one stream",
            f"bandwidth: {self.args.bandwidth_gbs:.0f} GB/s given, {self.measured / GB:.0f} GB/s "
            f"measured -> bound {bound:.0f} / {bound_measured:.0f} tokens/s",
            table(
                ["single stream", "decode tok/s", "of bound (given)", "of bound (measured)"],
                [
                    ["Transformers generate alone", alone, alone / bound, alone / bound_measured],
                    ["MedServer engine worker", worker, worker / bound, worker / bound_measured],
                ],
            ),
        )

    def streams_section(self) -> None:
        plan = self.plan
        progress("streams ...")

        async def together(n: int) -> list[Record]:
            prompts = [f"{QUESTION} Case {i}: {FILLER}" for i in range(n)]
            return await asyncio.gather(
                *(answer(self.worker, request([user(p)], plan.tokens)) for p in prompts)
            )

        rows = []
        for n in plan.streams:
            rounds = [asyncio.run(together(n)) for _ in range(plan.reps)]
            aggregate = median([aggregate_rate(r) for r in rounds])
            ttfts = [r.ttft_ms for records in rounds for r in records]
            rows.append([n, aggregate, median(ttfts), max(ttfts)])
        first, last = rows[0], rows[-1]
        self.say(
            "",
            "3. streams at once",
            table(["streams", "aggregate tok/s", "TTFT median ms", "TTFT max ms"], rows),
            f"{last[0]} streams give {last[1] / first[1]:.2f}x the aggregate of {first[0]}",
        )

    def joining_section(self) -> None:
        plan = self.plan
        progress("a newcomer joins ...")
        full = plan.max_batch_size
        rows = [self.join(full - 1), self.join(full)]
        self.say(
            "",
            f"4. a newcomer joins running streams (each row ~{rows[0][1]} prompt tokens: "
            f"~{plan.prompt_tokens} of text and {plan.images_per_row} images)",
            table(
                [
                    "running",
                    "newcomer prompt tokens",
                    "newcomer TTFT ms",
                    "longest stall ms",
                    "usual gap ms",
                ],
                [[f"{r[0]} (batch of {full})", *r[1:]] for r in rows],
            ),
            "longest stall: the longest wait of a running stream for its next text, from the "
            "newcomer's arrival to its first token; usual gap: the median wait before it came.",
        )

    def join(self, running: int) -> list:
        plan = self.plan

        def row(seed: int, tokens: int):
            text = long_text(self.tokenizer, plan.prompt_tokens, seed)
            turns = [
                user(f"{text}\n{QUESTION}", plan.images_per_row, png(plan.shape.image_size, seed))
            ]
            return request(turns, tokens)

        async def scenario():
            handles: list = []
            records = [Record(time.perf_counter()) for _ in range(running)]
            tasks = [
                asyncio.create_task(
                    answer(self.worker, row(i, plan.running_tokens), records[i], handles)
                )
                for i in range(running)
            ]
            # Until every running stream writes steadily.
            while not all(len(r.deliveries) >= 3 or r.ended for r in records):
                await asyncio.sleep(0.005)
            joined = time.perf_counter()
            newcomer = await answer(self.worker, row(running, plan.newcomer_tokens))
            first = newcomer.deliveries[0] if newcomer.deliveries else newcomer.ended
            for handle in handles:  # the rest of their answers is not measured
                handle.cancel()
            await asyncio.gather(*tasks)
            before = [
                b - a
                for r in records
                for a, b in zip(r.deliveries, r.deliveries[1:], strict=False)
                if b <= joined
            ]
            stall = max(r.longest_gap_ms(joined, first) for r in records)
            return [
                running,
                newcomer.prompt_tokens,
                newcomer.ttft_ms,
                stall,
                statistics.median(before) * 1000 if before else float("nan"),
            ]

        return asyncio.run(scenario())

    def fidelity_section(self) -> None:
        from inference.engine import ChatTurn

        progress("fidelity ...")
        system = ChatTurn("system", SYSTEM_PROMPT)

        def tokens(turns, thinking: bool = False) -> int:
            record = asyncio.run(answer(self.worker, request(turns, 1, thinking=thinking)))
            if record.failure:
                raise RuntimeError(f"the engine refused a fidelity request: {record.failure}")
            return record.prompt_tokens

        plain = tokens([user(QUESTION)])
        system_off = tokens([system, user(QUESTION)]) - plain
        system_on = tokens([system, user(QUESTION)], True) - tokens([user(QUESTION)], True)
        one = tokens([user(QUESTION, 1, self.image)]) - plain
        three = tokens([user(QUESTION, 3, self.image)]) - plain
        image_tokens = self.spec.image_tokens
        # Around each image the template writes its start and end markers and line breaks.
        rows = [
            [
                "system prompt, thinking on vs off",
                f"+{system_on} / +{system_off}",
                # Google's form joins instruction and system text with a space,
                # which merges with a neighbour or stands alone, by vocabulary.
                "equal (+-1: the space), > 0",
                system_off > 0 and abs(system_on - system_off) <= 1,
            ],
            [
                "one image",
                f"+{one}",
                f"{image_tokens} to {image_tokens + 8}",
                image_tokens <= one <= image_tokens + 8,
            ],
            ["three images", f"+{three}", f"3 x {one} (+-6)", abs(three - 3 * one) <= 6],
        ]
        self.checks = rows
        self.say(
            "",
            "1. fidelity: prompt tokens the engine counted",
            table(
                ["check", "tokens added", "expected", "verdict"],
                [[*r[:3], "ok" if r[3] else "FAILS"] for r in rows],
            ),
        )

    def close(self) -> None:
        self.worker.stop()


def aggregate_rate(records: list[Record]) -> float:
    spent = max(r.ended for r in records) - min(r.started for r in records)
    return sum(r.tokens for r in records) / spent


def sanitizes_control_tokens() -> bool:
    """Whether this transformers escapes control tokens in user text (5.23 and later)."""
    import transformers

    major, minor = (int(part) for part in transformers.__version__.split(".")[:2])
    return (major, minor) >= (5, 23)


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def preflight() -> None:
    """Say what this machine lacks, and how to bring it, before spending the slot."""
    missing = []
    for module, wheel in (("PIL", "pillow"), ("transformers", "transformers>=5.23")):
        try:
            __import__(module)
        except ImportError:
            missing.append(wheel)
    if missing:
        sys.exit(
            f"bench.gpu_acceptance needs {', '.join(missing)} here; carry the wheels as "
            "bench/README.md says (pip download --no-deps ...). Nothing was measured."
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_acceptance", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny shapes on the CPU, in seconds")
    parser.add_argument(
        "--bandwidth-gbs", type=float, default=4800.0, help="GPU memory GB/s (H200: 4800)"
    )
    parser.add_argument(
        "--deadline-s",
        type=float,
        default=540.0,
        help="skip the sections not begun after this many seconds (one slot is 600)",
    )
    args = parser.parse_args(argv)
    preflight()
    plan = SMOKE_PLAN if args.smoke else GPU_PLAN
    if plan.device == "cuda" and not torch.cuda.is_available():
        sys.exit(
            "bench.gpu_acceptance needs an NVIDIA GPU with CUDA, and PyTorch here cannot use "
            f"one (torch {torch.__version__}); --smoke runs it on the CPU. Nothing was measured."
        )
    scratch = Path(tempfile.mkdtemp(prefix="medserver-gpu-acceptance-"))
    run = Run(args, plan, scratch)
    try:
        run.build()
        for section in (
            run.fidelity_section,
            run.decode_section,
            run.streams_section,
            run.joining_section,
        ):
            if run.time_left():
                section()
    finally:
        if hasattr(run, "worker"):
            run.close()
        shutil.rmtree(scratch, ignore_errors=True)
    failed = [r[0] for r in run.checks if not r[3]]
    run.say("", f"fidelity checks failing: {', '.join(failed)}" if failed else "")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
