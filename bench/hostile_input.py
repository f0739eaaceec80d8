"""Does one user's huge conversation stall everyone else?

    .venv/bin/python -m bench.hostile_input [--reps 3]

Starts `medserver -m demo` with two users. One sends /api/chat a conversation
at the limits (99 messages of 50,000 characters, allowed by the message
limits, far beyond the model's context); a second later the other asks a
question with a two-token answer. Prints how long the hostile request took to
be refused, and the other user's time to first token against the same
question asked alone (target: under 500 ms on a 2-core machine).
"""

from __future__ import annotations

import argparse
import asyncio
import time

from bench.clients import ApiClient
from bench.report import MachineLoad, machine, median, table, verdict
from bench.rig import say
from bench.server import start_server

TTFT_TARGET_MS = 500
QUESTION = "Signs of pneumothorax on a chest film?"


def hostile_body() -> dict:
    messages = [
        {"role": "user" if n % 2 == 0 else "assistant", "content": "lorem ipsum " * 4_166}
        for n in range(99)
    ]
    return {"messages": messages, "max_tokens": 10, "stream": False}


async def hostile(client: ApiClient) -> tuple[int, float]:
    started = time.perf_counter()
    response = await client.http.post(client.url, json=hostile_body())
    return response.status_code, (time.perf_counter() - started) * 1000


async def measure(reps: int) -> tuple[list, list]:
    server = start_server(max_new_tokens=2)
    try:
        server.create_user("attacker")
        server.create_user("clinician")
        attacker = ApiClient(server, server.api_token("attacker"))
        clinician = ApiClient(server, server.api_token("clinician"))
        alone, together = [], []
        try:
            for rep in range(reps):
                alone.append((await clinician.stream(QUESTION, 2, ignore_eos=True)).ttft_ms)
                attack = asyncio.ensure_future(hostile(attacker))
                await asyncio.sleep(1.0)
                stream = await clinician.stream(QUESTION, 2, ignore_eos=True)
                status, refused_ms = await attack
                together.append((stream.ttft_ms, status, refused_ms))
                say(f"  repetition {rep + 1}/{reps} done")
        finally:
            await attacker.close()
            await clinician.close()
    finally:
        server.stop()
    return alone, together


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile_input", description=__doc__)
    parser.add_argument("--reps", type=int, default=3, help="repetitions")
    args = parser.parse_args(argv)
    load = MachineLoad()
    alone, together = asyncio.run(measure(args.reps))
    ttft = median([t for t, _, _ in together])
    rows = [
        ["the short question alone", f"{median(alone):.0f}", "-", "-"],
        [
            "1 s after the hostile request",
            f"{ttft:.0f} (max {max(t for t, _, _ in together):.0f})",
            ", ".join(sorted({str(s) for _, s, _ in together})),
            f"{median([r for _, _, r in together]):.0f}",
        ],
    ]
    header = ["case", "short answer TTFT ms", "hostile status", "hostile refused after ms"]
    print(
        f"bench.hostile_input: 99 x 50,000 characters to /api/chat, then another user's "
        f"2-token question; {args.reps} repetitions, medians ({machine()})\n"
    )
    print(table(header, rows))
    print(
        f"\nthe other user's time to first token: {ttft:.0f} ms "
        f"(target < {TTFT_TARGET_MS} ms: {verdict(ttft < TTFT_TARGET_MS)})"
    )
    print(load.summary())


if __name__ == "__main__":
    main()
