"""The three ways a benchmark reads an answer, each timed the same way.

- `InProcessEngine`: the engine worker called directly, in this process (the baseline);
- `ChatClient`: a browser's WebSocket to the chat consumer, logged in with a session cookie;
- `ApiClient`: an SSE client of `/api/chat` with a personal API token.

Each returns a `Stream`: when the request left, when the first text arrived,
when the answer ended, and how many frames and bytes carried its text.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.server import PASSWORD, Server


@dataclass
class Stream:
    """One answer as its reader saw it (times from time.perf_counter)."""

    started: float
    first: float | None
    ended: float
    tokens: int  # completion tokens; for the chat path, filled in from the database
    frames: int = 0  # frames (events, WebSocket messages) that carried answer text
    bytes: int = 0  # size of those frames
    message_id: int | None = None

    @property
    def ttft_ms(self) -> float:
        """Time to first token, in milliseconds (the whole time if no text came)."""
        return ((self.first or self.ended) - self.started) * 1000

    @property
    def tokens_per_second(self) -> float:
        """The rate tokens arrived at once streaming: from the first to the end.

        The time to the first token is counted apart (`ttft_ms`), so a slow
        start does not hide in the rate, nor the rate depend on the length.
        """
        if self.first is None or self.tokens < 2 or self.ended <= self.first:
            return float("nan")
        return (self.tokens - 1) / (self.ended - self.first)


def request_body(prompt: str, tokens: int, *, ignore_eos: bool) -> dict:
    """The /api/chat body that asks what the chat page asks: greedy, no thinking."""
    return {
        "messages": [{"role": "user", "content": prompt}],
        "stream": True,
        "max_tokens": tokens,
        "temperature": 0,
        "thinking": False,
        "ignore_eos": ignore_eos,
    }


class InProcessEngine:
    """MedServer's engine worker, called directly in this process."""

    def __init__(self, worker) -> None:
        self.worker = worker

    @classmethod
    def load(cls, model: str, data_dir: Path, *, batch: int = 8) -> InProcessEngine:
        """Load `model` as `medserver -m MODEL --force-transformers --loop-guard 0` does."""
        from inference.config import EngineConfig
        from inference.engine_select import load_engine
        from inference.worker import EngineWorker, WorkerLimits

        config = EngineConfig(
            model=model,
            data_dir=data_dir,
            force_transformers=True,
            loop_guard=0,
            max_batch_size=batch,
        )
        limits = WorkerLimits(max_batch_size=batch, max_queued=256, loop_guard=0)
        worker = EngineWorker(lambda: load_engine(config), model, limits).start()
        if not worker.wait_ready(600):
            raise RuntimeError(f"the engine did not load: {worker.state.reason}")
        return cls(worker)

    async def stream(self, prompt: str, tokens: int, *, ignore_eos: bool) -> Stream:
        from inference.engine import ChatTurn, Delta, Finished, GenerationRequest, Sampling

        request = GenerationRequest(
            (ChatTurn("user", prompt),),
            Sampling(tokens, 0.0, 0.95, ignore_eos=ignore_eos),
            thinking=False,
        )
        started = time.perf_counter()
        first, frames = None, 0
        async for event in self.worker.submit(request).events():
            if isinstance(event, Delta):
                first = first or time.perf_counter()
                frames += 1
            elif isinstance(event, Finished):
                return Stream(started, first, time.perf_counter(), event.completion_tokens, frames)
            else:
                raise RuntimeError(f"the engine failed: {event}")
        raise RuntimeError("the engine ended without Finished")

    def stop(self) -> None:
        self.worker.stop()


class ApiClient:
    """An SSE client of /api/chat, as other tools use it."""

    def __init__(self, server: Server, api_key: str) -> None:
        self.url = f"{server.url}/api/chat"
        self.http = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {api_key}"}, timeout=httpx.Timeout(600)
        )

    async def stream(self, prompt: str, tokens: int, *, ignore_eos: bool) -> Stream:
        body = request_body(prompt, tokens, ignore_eos=ignore_eos)
        started = time.perf_counter()
        first, frames, size = None, 0, 0
        # Imported here: the in-process path (bench.gpu on a GPU machine) needs neither
        # httpx-sse nor websockets, which only the development tools install.
        from httpx_sse import aconnect_sse

        async with aconnect_sse(self.http, "POST", self.url, json=body) as source:
            source.response.raise_for_status()
            async for event in source.aiter_sse():
                if event.data == "[DONE]":
                    break
                data = json.loads(event.data)
                if data["type"] in ("answer", "thinking") and data["delta"]:
                    first = first or time.perf_counter()
                    frames += 1
                    size += len(event.data.encode()) + 8  # "data: " and the blank line
                elif data["type"] == "done":
                    tokens_written = data["usage"]["completion_tokens"]
                    return Stream(started, first, time.perf_counter(), tokens_written, frames, size)
                elif data["type"] == "error":
                    raise RuntimeError(f"/api/chat failed: {data}")
        raise RuntimeError("/api/chat ended without a done frame")

    async def close(self) -> None:
        await self.http.aclose()


# The chat page's frames are HTML fragments that htmx swaps in by id. The client
# reads as little of them as it can, so a change of markup does not break it:
# an element with id="message-N" carries the message's data-status, and the
# frames of an answer being written name elements whose id ends in "-N" or "-N-...".
_TAG = re.compile(r"<[a-zA-Z][^>]*>")
_MESSAGE_ID = re.compile(r'\bid="message-(\d+)"')
_STATUS = re.compile(r'\bdata-status="(\w+)"')
_ROLE = re.compile(r'\bdata-message-role="(\w+)"')
_ENDED = ("complete", "stopped", "error")


def _messages_in(frame: str) -> list[tuple[int, str | None, str | None]]:
    """(id, role, status) of every message element the frame carries."""
    found = []
    for tag in _TAG.findall(frame):
        if match := _MESSAGE_ID.search(tag):
            role, status = _ROLE.search(tag), _STATUS.search(tag)
            found.append((int(match.group(1)), role and role.group(1), status and status.group(1)))
    return found


def _has_text(frame: str) -> bool:
    return bool(html.unescape(re.sub(r"<[^>]*>", "", frame)).strip())


class ChatClient:
    """A logged-in browser's side of the chat WebSocket, without the browser."""

    def __init__(self, server: Server, username: str) -> None:
        self.server = server
        with httpx.Client(base_url=server.url, timeout=30) as http:
            http.get("/accounts/login/")
            response = http.post(
                "/accounts/login/",
                data={
                    "username": username,
                    "password": PASSWORD,
                    "csrfmiddlewaretoken": http.cookies["csrftoken"],
                },
                headers={"Referer": server.url + "/"},
            )
            if "sessionid" not in http.cookies:
                raise RuntimeError(f"login failed ({response.status_code})")
            self.cookie = http.cookies["sessionid"]

    async def connect(self, session_id: str):
        """Open the WebSocket of one chat session."""
        import websockets

        return await websockets.connect(
            f"{self.server.ws_url}/ws/chat/{session_id}/",
            additional_headers={"Cookie": f"sessionid={self.cookie}", "Origin": self.server.url},
            open_timeout=30,
            max_size=None,
        )

    async def stream(self, socket, prompt: str) -> Stream:
        """Send `prompt` on an open session socket; read until its answer ends.

        The answer is the assistant message that appears streaming after the
        send; its first token is the first later frame about it that carries
        text, its end the frame where its data-status is complete or stopped.
        Its token count is left 0: it is read back from the database.
        """
        started = time.perf_counter()
        await socket.send(json.dumps({"action": "send", "content": prompt}))
        answer, first, frames, size = None, None, 0, 0
        while True:
            frame = await asyncio.wait_for(socket.recv(), timeout=600)
            now = time.perf_counter()
            messages = _messages_in(frame)
            if answer is None:
                for message_id, role, status in messages:
                    if role == "assistant" and status == "streaming":
                        answer = message_id
                continue
            for message_id, _role, status in messages:
                if message_id == answer and status in _ENDED:
                    if status == "error":
                        raise RuntimeError(f"answer {answer} failed")
                    return Stream(started, first, now, 0, frames, size, answer)
            if re.search(rf'\bid="[^"]*-{answer}(-[^"]*)?"', frame) and _has_text(frame):
                first = first or now
                frames += 1
                size += len(frame.encode())
