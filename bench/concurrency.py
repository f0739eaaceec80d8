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
# 8 streams against 1: the engine alone, and the two paths that add the server's work.
SCALING_TARGETS = {"engine": 5.0, "ws": 4.5, "api": 4.5}


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
        goal = SCALING_TARGETS[path]
        target = f"target >= {goal:g}x: {verdict(scale >= goal)}"
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


async def ninth_joins(rig: Rig) -> str:
    """A full batch of 8 answers of different lengths, and a 9th request 50 ms later:
    it must take the place of the first answer to end, not wait for the longest."""
    lengths = [rig.tokens // 2 + n * rig.tokens // 4 for n in range(8)]

    async def ninth() -> object:
        await asyncio.sleep(0.05)
        return await rig.engine.stream(rig.prompts[0], rig.tokens // 4, ignore_eos=True)

    *eight, late = await asyncio.gather(
        *(
            rig.engine.stream(rig.prompts[n % len(rig.prompts)], length, ignore_eos=True)
            for n, length in enumerate(lengths)
        ),
        ninth(),
    )
    start = min(s.started for s in eight)
    first_end = (min(s.ended for s in eight) - start) * 1000
    last_end = (max(s.ended for s in eight) - start) * 1000
    joined = (late.first - start) * 1000
    met = first_end <= joined < last_end
    return (
        f"a 9th request beside a full batch of 8 ({lengths[0]}-{lengths[-1]} tokens): first "
        f"token at {joined:.0f} ms; the first of the 8 ended at {first_end:.0f} ms, the last "
        f"at {last_end:.0f} ms (joins when a place frees, before the longest ends: "
        f"{verdict(met)})"
    )


async def main_async(args: argparse.Namespace) -> None:
    counts = sorted(int(n) for n in args.streams.split(","))
    async with live_rig(args, prompts=max(counts), batch=max(8, max(counts))) as rig:
        say(f"measuring {args.reps} repetitions of {counts} streams on {len(PATHS)} paths ...")
        load = MachineLoad()
        runs = await measure(rig, args.reps, counts)
        joining = await ninth_joins(rig)
        machine_load = load.summary()
    print(summarize(runs, counts, args.tokens, args.reps, args.model))
    print(joining)
    print(machine_load)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.concurrency", description=__doc__)
    common_arguments(parser, tokens=128, reps=5)
    parser.add_argument("--streams", default="1,2,4,8", help="simultaneous streams to try")
    asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
