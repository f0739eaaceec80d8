"""Item 1: what the stack costs one stream, against the engine called directly.

    .venv/bin/python -m bench.stream_overhead [--tokens 256] [--reps 9] [--model demo]

Starts `medserver -m demo` and loads the same engine in this process, then for
each repetition runs the same greedy answer three ways, in rotating order:
the engine worker called directly, a WebSocket client of the chat consumer
(logged in like a browser) and an SSE client of /api/chat. Prints the median
tokens/s of each (from the first token to the end), their ratio to the engine's
(paired per repetition), the time to first token added by the stack, and what
each path spends per token: frames, bytes, server CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from bench.report import MachineLoad, machine, median, table, verdict
from bench.rig import Rig, common_arguments, live_rig, say

PATHS = {"engine": "engine, in-process", "ws": "WebSocket chat", "api": "SSE /api/chat"}
RATIO_TARGET = 0.95
EXTRA_TTFT_TARGET_MS = 15.0


async def run_once(rig: Rig, path: str, prompt: str, session_socket=None):
    """One answer on one path; returns the stream and the CPU seconds it cost."""
    cpu_before, own_before = rig.server.cpu_seconds(), time.process_time()
    if path == "engine":
        stream = await rig.engine.stream(prompt, rig.tokens, ignore_eos=True)
        return stream, time.process_time() - own_before
    if path == "ws":
        stream = await rig.chat.stream(session_socket, prompt)
    else:
        stream = await rig.api.stream(prompt, rig.tokens, ignore_eos=True)
    return stream, rig.server.cpu_seconds() - cpu_before


async def measure(rig: Rig, reps: int) -> dict[str, list]:
    runs: dict[str, list] = {path: [] for path in PATHS}
    order = list(PATHS)
    for rep in range(-1, reps):  # rep -1 warms every path up and is not counted
        prompt = rig.prompts[max(rep, 0) % len(rig.prompts)]
        for path in order[rep % 3 :] + order[: rep % 3]:
            socket = (await rig.new_sockets(1))[0] if path == "ws" else None
            stream, cpu = await run_once(rig, path, prompt, socket)
            if socket is not None:
                await socket.close()
            if rep >= 0:
                runs[path].append((stream, cpu))
        say(f"  repetition {rep + 1}/{reps} done" if rep >= 0 else "  warmed up")
    saved = rig.server.completion_tokens([s.message_id for s, _ in runs["ws"]])
    for stream, _ in runs["ws"]:
        stream.tokens = saved[stream.message_id]
    return runs


def summarize(runs: dict[str, list], tokens: int, reps: int, model: str) -> str:
    engine = [stream for stream, _ in runs["engine"]]
    rows, verdicts = [], []
    for path, label in PATHS.items():
        streams = [stream for stream, _ in runs[path]]
        cpu = sum(c for _, c in runs[path])
        written = sum(s.tokens for s in streams)
        ratios = [
            s.tokens_per_second / e.tokens_per_second for s, e in zip(streams, engine, strict=True)
        ]
        extra = [s.ttft_ms - e.ttft_ms for s, e in zip(streams, engine, strict=True)]
        is_stack = path != "engine"
        rows.append(
            [
                label,
                median([s.tokens_per_second for s in streams]),
                median(ratios) if is_stack else 1.0,
                median([s.ttft_ms for s in streams]),
                median(extra) if is_stack else 0.0,
                f"{min(s.tokens for s in streams)}-{max(s.tokens for s in streams)}",
                sum(s.frames for s in streams) / written,
                sum(s.bytes for s in streams) / written if is_stack else float("nan"),
                cpu * 1000 / written,
            ]
        )
        if is_stack:
            verdicts.append(
                f"{label}: ratio {median(ratios):.3f} (target >= {RATIO_TARGET}: "
                f"{verdict(median(ratios) >= RATIO_TARGET)}), extra first-token time "
                f"{median(extra):.1f} ms (target <= {EXTRA_TTFT_TARGET_MS:.0f} ms: "
                f"{verdict(median(extra) <= EXTRA_TTFT_TARGET_MS)})"
            )
    header = [
        "path",
        "tok/s",
        "ratio",
        "TTFT ms",
        "extra TTFT ms",
        "tokens",
        "frames/token",
        "bytes/token",
        "CPU ms/token",
    ]
    return "\n".join(
        [
            f"bench.stream_overhead: -m {model}, {tokens} greedy tokens per answer, "
            f"{reps} interleaved repetitions, medians ({machine()})",
            "",
            table(header, rows),
            "",
            *verdicts,
            "",
            "tok/s: tokens after the first / time from first token to the end, as the client",
            "received them; ratio and extra TTFT are paired with the engine run of the same",
            "repetition. CPU ms/token: the server process's CPU time (for the engine row, this",
            "process's), per token written.",
        ]
    )


async def main_async(args: argparse.Namespace) -> None:
    async with live_rig(args, prompts=args.reps) as rig:
        say(f"measuring {args.reps} repetitions of {len(PATHS)} paths ...")
        load = MachineLoad()
        runs = await measure(rig, args.reps)
        machine_load = load.summary()
    print(summarize(runs, args.tokens, args.reps, args.model))
    print(machine_load)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stream_overhead", description=__doc__)
    common_arguments(parser, tokens=256, reps=9)
    asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
