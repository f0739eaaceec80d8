"""What every live benchmark sets up: a server, the same engine in-process, clients, prompts."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.clients import ApiClient, ChatClient, InProcessEngine
from bench.server import Server, start_server

USER = "bench"

# Clinical questions; the benchmark keeps those whose greedy answer runs the full
# length, so the chat path (which stops at end-of-turn) writes as many tokens as
# the API path (which is told to ignore it).
CANDIDATE_PROMPTS = [
    "Signs of pneumothorax on a chest film?",
    "Dose of amoxicillin for otitis media in children",
    "Differential for acute chest pain",
    "What is a normal QT interval?",
    "Explain GERD to a patient",
    "Management of diabetic ketoacidosis",
    "Red flags in low back pain",
    "Interpret a raised troponin",
    "Summarize the key findings and suggest the next diagnostic steps.",
    "Is there evidence of a fracture on this radiograph of the wrist?",
    "Assessment and plan for community-acquired pneumonia",
    "What does a spiculated mass on mammography suggest?",
    "Describe the workup of a thyroid nodule",
    "First steps for a patient with ST elevation in the inferior leads",
    "How is heart failure with reduced ejection fraction treated?",
    "What causes hyperkalaemia with a raised creatinine?",
]


def common_arguments(parser: argparse.ArgumentParser, *, tokens: int, reps: int) -> None:
    parser.add_argument(
        "--model",
        default="demo",
        help="what medserver serves: demo, or the folder of a model (bench.gpu writes one)",
    )
    parser.add_argument("--tokens", type=int, default=tokens, help="tokens per answer")
    parser.add_argument("--reps", type=int, default=reps, help="interleaved repetitions")


@dataclass
class Rig:
    server: Server
    engine: InProcessEngine
    chat: ChatClient
    api: ApiClient
    prompts: list[str]
    tokens: int
    unused_sessions: list[str] = field(default_factory=list)

    async def new_sockets(self, count: int) -> list:
        """`count` new chat sessions, each with its WebSocket open.

        Sessions are made in bulk (one manage.py call takes a second or two)
        and each serves one answer, so every answer has the same prompt.
        """
        if len(self.unused_sessions) < count:
            made = await asyncio.to_thread(self.server.new_sessions, USER, max(count, 64))
            self.unused_sessions += made
        sessions, self.unused_sessions = (
            self.unused_sessions[:count],
            self.unused_sessions[count:],
        )
        return [await self.chat.connect(session) for session in sessions]


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@asynccontextmanager
async def live_rig(args: argparse.Namespace, *, prompts: int, batch: int = 8) -> AsyncIterator[Rig]:
    """Start medserver and the in-process engine on `args.model`; pick `prompts` prompts."""
    model = str(Path(args.model).resolve()) if args.model != "demo" else "demo"
    say(f"starting medserver -m {args.model} ...")
    server = start_server(
        model=model, max_new_tokens=args.tokens, extra_args=("--force-transformers",)
    )
    engine = None
    try:
        server.create_user(USER)
        say("loading the same engine in this process ...")
        # The demo model's folder is already built in the server's data dir.
        engine = InProcessEngine.load(model, server.data_dir, batch=batch)
        chat = ChatClient(server, USER)
        api = ApiClient(server, server.api_token(USER))
        try:
            chosen = await full_length_prompts(engine, args.tokens, prompts)
            yield Rig(server, engine, chat, api, chosen, args.tokens)
        finally:
            await api.close()
    finally:
        if engine is not None:
            engine.stop()
        server.stop()


async def full_length_prompts(engine: InProcessEngine, tokens: int, want: int) -> list[str]:
    """Up to `want` prompts whose greedy answer does not end before `tokens` tokens."""
    chosen = []
    for prompt in CANDIDATE_PROMPTS:
        stream = await engine.stream(prompt, tokens, ignore_eos=False)
        if stream.tokens == tokens:
            chosen.append(prompt)
            if len(chosen) == want:
                return chosen
    if not chosen:
        say("no prompt runs the full length; chat answers will be shorter (counted as written)")
        return CANDIDATE_PROMPTS[:want]
    return (chosen * want)[:want]
