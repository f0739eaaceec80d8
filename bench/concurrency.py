"""Item 2: do several clinicians at once queue behind each other?

    .venv/bin/python -m bench.concurrency [--tokens 128] [--reps 5] [--streams 1,2,4,8]

Starts `medserver -m demo` and the same engine in this process; for each
repetition and each number of simultaneous streams, runs that many greedy
answers at once three ways, in rotating order: the engine worker called
directly, WebSocket clients of the chat consumer (one chat session each) and
SSE clients of /api/chat. Prints the aggregate tokens/s (all tokens / time
from the first request to the last answer's end) and each stream's time to
first token, and how the aggregate scales against one stream.
"""

from __future__ import annotations

import argparse
import asyncio

from bench.clients import Stream
from bench.report import MachineLoad, machine, median, table, verdict
from bench.rig import Rig, common_arguments, live_rig, say

PATHS = {"engine": "engine, in-process", "ws": "WebSocket chat", "api": "SSE /api/chat"}
SCALING_TARGET = 5.0


async def run_together(rig: Rig, path: str, count: int) -> list[Stream]:
    """`count` answers started at once on one path (sockets are opened beforehand)."""
    prompts = [rig.prompts[i % len(rig.prompts)] for i in range(count)]
    if path == "engine":
        return await asyncio.gather(
            *(rig.engine.stream(p, rig.tokens, ignore_eos=True) for p in prompts)
        )
    if path == "api":
        return await asyncio.gather(
            *(rig.api.stream(p, rig.tokens, ignore_eos=True) for p in prompts)
        )
    sockets = await rig.new_sockets(count)
    try:
        return await asyncio.gather(
            *(rig.chat.stream(s, p) for s, p in zip(sockets, prompts, strict=True))
        )
    finally:
        for socket in sockets:
            await socket.close()


def aggregate(streams: list[Stream]) -> float:
    """All tokens written over the time from the first request to the last end."""
    return sum(s.tokens for s in streams) / (
        max(s.ended for s in streams) - min(s.started for s in streams)
    )


async def measure(rig: Rig, reps: int, counts: list[int]) -> dict:
    runs: dict = {(path, n): [] for path in PATHS for n in counts}
    order = list(PATHS)
    for rep in range(-1, reps):  # rep -1 warms every path up and is not counted
        for n in counts if rep >= 0 else [max(counts)]:
            for path in order[rep % 3 :] + order[: rep % 3]:
                streams = await run_together(rig, path, n)
                if rep >= 0:
                    runs[path, n].append(streams)
        say(f"  repetition {rep + 1}/{reps} done" if rep >= 0 else "  warmed up")
    chat = [s for n in counts for streams in runs["ws", n] for s in streams]
    saved = rig.server.completion_tokens([s.message_id for s in chat])
    for stream in chat:
        stream.tokens = saved[stream.message_id]
    return runs


def summarize(runs: dict, counts: list[int], tokens: int, reps: int, model: str) -> str:
    rows = []
    for n in counts:
        row: list[object] = [n]
        for path in PATHS:
            row.append(median([aggregate(streams) for streams in runs[path, n]]))
        for path in PATHS:
            ttfts = [s.ttft_ms for streams in runs[path, n] for s in streams]
            row.append(f"{median(ttfts):.0f} / {max(ttfts):.0f}")
        rows.append(row)
    lines = []
    low, high = min(counts), max(counts)
    for path, label in PATHS.items():
        scale = median(
            [
                aggregate(many) / aggregate(one)
                for many, one in zip(runs[path, high], runs[path, low], strict=True)
            ]
        )
        target = f"target >= {SCALING_TARGET:.0f}x: {verdict(scale >= SCALING_TARGET)}"
        lines.append(f"{label}: {high} streams give {scale:.2f}x the aggregate of {low} ({target})")
    header = ["streams", *(f"{p} tok/s" for p in PATHS), *(f"{p} TTFT med/max ms" for p in PATHS)]
    return "\n".join(
        [
            f"bench.concurrency: -m {model}, {tokens} greedy tokens per answer, "
            f"{reps} interleaved repetitions, medians ({machine()})",
            "",
            table(header, rows),
            "",
            *lines,
            "",
            "tok/s: aggregate of all streams, all tokens / (last end - first request);",
            "scaling is paired per repetition. engine = the engine worker in-process,",
            "ws = WebSocket chat clients, api = SSE clients of /api/chat.",
        ]
    )


async def main_async(args: argparse.Namespace) -> None:
    counts = sorted(int(n) for n in args.streams.split(","))
    async with live_rig(args, prompts=max(counts), batch=max(8, max(counts))) as rig:
        say(f"measuring {args.reps} repetitions of {counts} streams on {len(PATHS)} paths ...")
        load = MachineLoad()
        runs = await measure(rig, args.reps, counts)
        machine_load = load.summary()
    print(summarize(runs, counts, args.tokens, args.reps, args.model))
    print(machine_load)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.concurrency", description=__doc__)
    common_arguments(parser, tokens=128, reps=5)
    parser.add_argument("--streams", default="1,2,4,8", help="simultaneous streams to try")
    asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
