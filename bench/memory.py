"""Item 4: the server's memory at idle and under 8 streams, beyond the model.

    .venv/bin/python -m bench.memory [--rounds 5] [--tokens 64] [--model demo]

Loads the engine alone in a child process (PyTorch, Transformers and the model:
what any server of this model pays), then starts `medserver` and reads its
resident memory (VmRSS) at start, after a first answer, at its peak while 8
answers stream at once (8 WebSocket chats, then 8 SSE clients, sampled every
10 ms), and at idle after `--rounds` such rounds (growth there is a leak).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from pathlib import Path

from bench.clients import ApiClient, ChatClient
from bench.report import MachineLoad, machine, table
from bench.rig import CANDIDATE_PROMPTS, USER, say
from bench.server import PROJECT_DIR, Server, start_server

STREAMS = 8
MB = 1024 * 1024

# Run in a child process: the engine, loaded as the server loads it, and nothing else.
ENGINE_ALONE = """
import json, sys
from pathlib import Path
from inference.engine_select import load_engine
from inference.config import EngineConfig
engine = load_engine(EngineConfig(model=sys.argv[1], data_dir=Path(sys.argv[2]),
                                  force_transformers=True))
weights = sum(p.numel() * p.element_size() for p in engine.model.parameters())
rss = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status")
           if line.startswith("VmRSS:"))
print(json.dumps({"rss": rss, "weights": weights}))
"""


def engine_alone(model: str, data_dir: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", ENGINE_ALONE, model, str(data_dir)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


async def peak_while(server: Server, work) -> int:
    """The highest VmRSS seen every 10 ms while `work` runs."""
    peak = server.rss_bytes()
    task = asyncio.ensure_future(work)
    while not task.done():
        peak = max(peak, server.rss_bytes())
        await asyncio.sleep(0.01)
    await task
    return max(peak, server.rss_bytes())


async def measure(server: Server, rounds: int, tokens: int) -> dict:
    chat = ChatClient(server, USER)
    api = ApiClient(server, server.api_token(USER))
    prompts = [CANDIDATE_PROMPTS[i % len(CANDIDATE_PROMPTS)] for i in range(STREAMS)]
    figures = {"start": server.rss_bytes()}

    async def chats() -> None:
        sessions = await asyncio.to_thread(server.new_sessions, USER, STREAMS)
        sockets = [await chat.connect(s) for s in sessions]
        await asyncio.gather(*(chat.stream(s, p) for s, p in zip(sockets, prompts, strict=True)))
        for socket in sockets:
            await socket.close()

    async def sse() -> None:
        await asyncio.gather(*(api.stream(p, tokens, ignore_eos=True) for p in prompts))

    try:
        await api.stream(prompts[0], tokens, ignore_eos=True)
        await asyncio.sleep(1)
        figures["after one answer"] = server.rss_bytes()
        figures["peak, 8 WebSocket chats"] = 0
        figures["peak, 8 SSE clients"] = 0
        for done in range(rounds):
            ws_peak = await peak_while(server, chats())
            sse_peak = await peak_while(server, sse())
            figures["peak, 8 WebSocket chats"] = max(figures["peak, 8 WebSocket chats"], ws_peak)
            figures["peak, 8 SSE clients"] = max(figures["peak, 8 SSE clients"], sse_peak)
            if done == 0:
                await asyncio.sleep(1)
                figures["idle after 1 round"] = server.rss_bytes()
            say(f"  round {done + 1}/{rounds} done")
        await asyncio.sleep(1)
        figures[f"idle after {rounds} rounds"] = server.rss_bytes()
    finally:
        await api.close()
    return figures


def summarize(alone: dict, figures: dict, rounds: int, model: str) -> str:
    rows = [
        ["engine alone (torch + model, no server)", alone["rss"] / MB, float("nan"), float("nan")]
    ]
    for label, rss in figures.items():
        rows.append(
            [
                f"server: {label}",
                rss / MB,
                (rss - alone["weights"]) / MB,
                (rss - alone["rss"]) / MB,
            ]
        )
    idle = figures["idle after 1 round"]
    growth = figures[f"idle after {rounds} rounds"] - idle
    ws_load = figures["peak, 8 WebSocket chats"] - idle
    sse_load = figures["peak, 8 SSE clients"] - idle
    return "\n".join(
        [
            f"bench.memory: -m {model}, {STREAMS} streams per round, {rounds} rounds ({machine()})",
            f"model weights: {alone['weights'] / MB:.1f} MB",
            "",
            table(["when", "RSS MB", "beyond weights MB", "beyond engine alone MB"], rows),
            "",
            f"under 8 streams the server grows {ws_load / MB:.1f} MB (WebSocket) / "
            f"{sse_load / MB:.1f} MB (SSE) over idle; "
            f"idle after {rounds} rounds is {growth / MB:+.1f} MB from idle after 1 "
            "(no target in the issue: a growing figure here is a leak).",
        ]
    )


async def main_async(args: argparse.Namespace) -> None:
    model = str(Path(args.model).resolve()) if args.model != "demo" else "demo"
    say(f"starting medserver -m {args.model} ...")
    server = start_server(
        model=model, max_new_tokens=args.tokens, extra_args=("--force-transformers",)
    )
    try:
        server.create_user(USER)
        load = MachineLoad()
        say("loading the engine alone in a child process ...")
        alone = engine_alone(model, server.data_dir)
        say(f"measuring {args.rounds} rounds of {STREAMS} streams ...")
        figures = await measure(server, args.rounds, args.tokens)
        machine_load = load.summary()
    finally:
        server.stop()
    print(summarize(alone, figures, args.rounds, args.model))
    print(machine_load)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--model", default="demo", help="demo, or the folder of a model")
    parser.add_argument("--tokens", type=int, default=64, help="tokens per answer")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of 8 streams")
    asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
