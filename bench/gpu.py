"""Item 5: the GPU figures, on a random-weight model shaped like MedGemma 1.5 4B.

    .venv/bin/python -m bench.gpu [--bandwidth-gbs 3350] [--tokens 256] [--reps 3] [--server]

Needs an NVIDIA GPU with CUDA and refuses without one. Downloads nothing: the
model is built in GPU memory, bf16, from MedGemma 1.5 4B's configuration with
random weights; the demo model's tokenizer gives the token ids. Prints:

- the memory bandwidth, as given (--bandwidth-gbs, H100 SXM's 3350 GB/s by
  default) and as measured with a large device-to-device copy;
- single-stream decode tokens/s, of Transformers' generate alone and of
  MedServer's engine worker, against the bound weight bytes / bandwidth (each
  decode step reads every weight of the language model once);
- aggregate tokens/s and time to first token for 1, 2, 4, 8 streams.

With --server it also saves the model to a folder and runs bench.stream_overhead
and bench.concurrency against `medserver -m FOLDER` (about 9 GB of disk).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench.model_shapes import MEDGEMMA_4B, build_model, gemma3_config, weight_bytes
from bench.report import machine, median, table

GB = 1e9


def medgemma_4b_config(tokenizer):
    """Gemma3ForConditionalGeneration's configuration for MedGemma 1.5 4B (ids from `tokenizer`)."""
    return gemma3_config(MEDGEMMA_4B, tokenizer)


def measured_bandwidth(size: int = 4 * 1024**3, repeats: int = 10) -> float:
    """Device memory bandwidth in bytes/s from a `size`-byte copy (read + write)."""
    source = torch.empty(size, dtype=torch.uint8, device="cuda")
    target = torch.empty_like(source)
    times = []
    for _ in range(repeats + 1):  # the first copy warms up
        torch.cuda.synchronize()
        started = time.perf_counter()
        target.copy_(source)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    del source, target
    torch.cuda.empty_cache()
    return 2 * size / median(times[1:])


def generate_rate(model, tokenizer, tokens: int, reps: int) -> float:
    """Decode tokens/s of Transformers' generate alone: (N - 1) / (time(N) - time(1))."""
    inputs = tokenizer("Signs of pneumothorax on a chest film?", return_tensors="pt").to("cuda")

    def timed(n: int) -> float:
        torch.cuda.synchronize()
        started = time.perf_counter()
        with torch.inference_mode():
            model.generate(**inputs, max_new_tokens=n, min_new_tokens=n, do_sample=False)
        torch.cuda.synchronize()
        return time.perf_counter() - started

    timed(8)  # warm-up
    return median([(tokens - 1) / (timed(tokens) - timed(1)) for _ in range(reps)])


def engine_worker(model, processor):
    """MedServer's engine worker serving `model` (Transformers engine, batches of 8)."""
    from inference.registry import MODELS
    from inference.transformers_engine import TransformersEngine
    from inference.worker import EngineWorker, WorkerLimits

    def load():
        engine = TransformersEngine(None, MODELS["4"], max_model_len=8192, quantize=False)
        engine.model, engine.processor, engine.tokenizer = model, processor, processor.tokenizer
        return engine

    worker = EngineWorker(load, "random MedGemma 4B", WorkerLimits(loop_guard=0)).start()
    worker.wait_ready()
    return worker


async def engine_runs(worker, tokens: int, reps: int, counts: list[int]) -> dict[int, list]:
    from bench.clients import InProcessEngine
    from bench.rig import CANDIDATE_PROMPTS

    engine = InProcessEngine(worker)
    runs: dict[int, list] = {n: [] for n in counts}
    await engine.stream(CANDIDATE_PROMPTS[0], 8, ignore_eos=True)  # warm-up
    for _ in range(reps):
        for n in counts:
            prompts = CANDIDATE_PROMPTS[:n]
            runs[n].append(
                await asyncio.gather(*(engine.stream(p, tokens, ignore_eos=True) for p in prompts))
            )
    return runs


def save_folder(model, processor, folder: Path) -> None:
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


def run(args: argparse.Namespace, scratch: Path) -> None:
    """Measure and print; `scratch` holds the demo tokenizer and, with --server, the model."""
    from transformers import AutoProcessor

    from bench.model_shapes import gemma3_processor
    from inference.demo_model import ensure_demo_model

    counts = sorted(int(n) for n in args.streams.split(","))
    tokenizer = AutoProcessor.from_pretrained(ensure_demo_model(scratch / "demo")).tokenizer
    # The processor MedGemma 4B has: 896 x 896 images, 256 soft tokens each.
    processor = gemma3_processor(MEDGEMMA_4B, tokenizer)
    print("measuring the memory bandwidth ...", file=sys.stderr, flush=True)
    bandwidth = measured_bandwidth()
    print("building the model ...", file=sys.stderr, flush=True)
    model = build_model(medgemma_4b_config(tokenizer), tokenizer)
    total, decode = weight_bytes(model)
    print("decoding ...", file=sys.stderr, flush=True)
    raw = generate_rate(model, tokenizer, args.tokens, args.reps)
    worker = engine_worker(model, processor)
    runs = asyncio.run(engine_runs(worker, args.tokens, args.reps, counts))
    worker.stop()

    def aggregate(streams) -> float:
        spent = max(s.ended for s in streams) - min(s.started for s in streams)
        return sum(s.tokens for s in streams) / spent

    single = median([streams[0].tokens_per_second for streams in runs[min(counts)]])
    bound_given = args.bandwidth_gbs * GB / decode
    bound_measured = bandwidth / decode
    rows = [
        ["Transformers generate alone", raw, raw / bound_given, raw / bound_measured],
        ["MedServer engine worker", single, single / bound_given, single / bound_measured],
    ]
    scaling = [
        [
            n,
            median([aggregate(streams) for streams in runs[n]]),
            median([s.ttft_ms for streams in runs[n] for s in streams]),
            max(s.ttft_ms for streams in runs[n] for s in streams),
        ]
        for n in counts
    ]
    print(
        "\n".join(
            [
                f"bench.gpu: random-weight MedGemma 1.5 4B shape, bf16, {args.tokens} tokens, "
                f"{args.reps} repetitions, medians ({machine()})",
                f"weights: {total / GB:.2f} GB in all, {decode / GB:.2f} GB read per decode step",
                f"bandwidth: {args.bandwidth_gbs:.0f} GB/s given, "
                f"{bandwidth / GB:.0f} GB/s measured -> bound {bound_given:.0f} / "
                f"{bound_measured:.0f} tokens/s",
                "",
                table(
                    ["single stream", "decode tok/s", "of bound (given)", "of bound (measured)"],
                    rows,
                ),
                "",
                table(["streams", "aggregate tok/s", "TTFT median ms", "TTFT max ms"], scaling),
                f"{max(counts)} streams give {scaling[-1][1] / scaling[0][1]:.2f}x the aggregate "
                f"of {min(counts)} (target >= 5x)",
            ]
        )
    )
    if args.server:
        folder = scratch / "medgemma-4b-random"
        print(f"saving the model to {folder} ...", file=sys.stderr, flush=True)
        save_folder(model, processor, folder)
        del model, worker  # the worker's engine holds the model too
        torch.cuda.empty_cache()
        from bench import concurrency, stream_overhead

        same = ["--model", str(folder), "--tokens", str(args.tokens), "--reps", str(args.reps)]
        stream_overhead.main(same)
        concurrency.main(same)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__)
    parser.add_argument("--bandwidth-gbs", type=float, default=3350.0, help="GPU memory GB/s")
    parser.add_argument("--tokens", type=int, default=256, help="tokens per answer")
    parser.add_argument("--reps", type=int, default=3, help="repetitions")
    parser.add_argument("--streams", default="1,2,4,8", help="simultaneous streams to try")
    parser.add_argument(
        "--server", action="store_true", help="also run the stream and concurrency benchmarks"
    )
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        sys.exit(
            "bench.gpu needs an NVIDIA GPU with CUDA, and PyTorch here cannot use one "
            f"(torch {torch.__version__}); run it on a GPU machine. Nothing was measured."
        )
    scratch = Path(tempfile.mkdtemp(prefix="medserver-bench-gpu-"))
    try:
        run(args, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
