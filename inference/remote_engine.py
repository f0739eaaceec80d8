"""An engine that streams from an OpenAI-compatible server.

One client for two cases: `--engine-url`, an SGLang or vLLM deployment (or
another MedServer, or `transformers serve`) elsewhere on the network, and the
SGLang server MedServer starts itself (inference/sglang_engine.py). That
server batches concurrent requests, so each request runs on a thread of its
own here, up to `--engine-max-concurrency` at once.

What the clinician asks must be what the model sees, so at load the engine
checks the server: its context length, which non-OpenAI fields it takes,
that it serves the model -m names (its prompts count as -m's template
renders them) and that it sees images (a test image raises the prompt's
token count); see `RemoteEngine.load`.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from inference.engine import (
    Delta,
    Engine,
    EngineError,
    Finished,
    GenerationRequest,
    Job,
)
from inference.prompting import build_messages, generation_prompt
from inference.registry import ModelSpec
from inference.remote_checks import ServerChecks, data_uri_part, error_message
from inference.thinking import ThoughtSplitter
from inference.tokenizing import PromptEncoder

log = logging.getLogger(__name__)

_FINISH = {"stop": "stop", "length": "length"}


@dataclass(frozen=True)
class RemoteCall:
    """A request as the server gets it, and its prompt's length when counted here."""

    body: dict
    prompt_tokens: int | None


class RemoteEngine(ServerChecks, Engine):
    name = "remote"
    batched = False

    def __init__(
        self,
        base_url: str,
        spec: ModelSpec,
        *,
        api_key: str = "",
        model: str = "",
        model_dir: Path | None = None,
        max_model_len: int = 8192,
        max_concurrency: int = 256,
    ) -> None:
        """`model_dir`: the model's files on this machine, when they are here:
        MedServer then counts each prompt itself (to clamp the answer's budget
        to the context) and checks that the server renders prompts as it does."""
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.spec = spec
        self.api_key = api_key
        self.model = model
        self.model_dir = model_dir
        self.context = max_model_len  # lowered to the server's own at load
        self.max_concurrency = max_concurrency
        self.failed_reason: str | None = None
        self.encoder: PromptEncoder | None = None
        self.extensions: set[str] = set()  # non-OpenAI fields the server takes
        self.sees_images = False
        self.checks: dict[str, str] = {}  # what the checks at load found, for /api/health
        self._client = self._new_client()

    def _new_client(self) -> httpx.Client:
        return httpx.Client(
            timeout=httpx.Timeout(connect=10, read=600, write=60, pool=60),
            headers={"Authorization": f"Bearer {self.api_key}"} if self.api_key else {},
            # As many connections as requests run at once.
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
        )

    def describe(self) -> dict[str, str]:
        return {"url": self.base_url, "remote_model": self.model}

    def close(self) -> None:
        self._client.close()

    def prepare(self, request: GenerationRequest) -> RemoteCall:
        """The request's body; its answer's budget clamped to what the context
        leaves when MedServer can count the prompt."""
        if any(turn.images for turn in request.turns) and not self.sees_images:
            raise EngineError(
                f"The engine at {self.base_url} does not see images ({self.checks.get('images')})"
                "; send the question without images, or start that server with image support "
                "(SGLang: --enable-multimodal)."
            )
        sampling = request.sampling
        max_tokens = sampling.max_new_tokens
        prompt_tokens = None
        if self.encoder is not None:
            prompt_tokens = self.encoder.count(request, self.context)
            max_tokens = min(max_tokens, self.context - prompt_tokens)
        body = {
            "model": self.model,
            "messages": build_messages(request, self.spec, data_uri_part),
            "max_tokens": max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if "top_k" in self.extensions:
            body["top_k"] = sampling.top_k or -1  # -1: no limit, as vLLM and SGLang spell it
        if "chat_template_kwargs" in self.extensions:
            # The thinking instruction is in the messages already (build_messages);
            # a server that adds its own (MedServer) is asked not to.
            body["chat_template_kwargs"] = {"enable_thinking": False}
        if sampling.ignore_eos:
            if "ignore_eos" not in self.extensions:
                raise EngineError(
                    f"The engine at {self.base_url} cannot write past the end of an answer "
                    "(it does not take ignore_eos)."
                )
            body["ignore_eos"] = True
        if request.continue_answer:
            if "continue_final_message" not in self.extensions:
                raise EngineError(
                    f"The engine at {self.base_url} cannot go on from an unfinished answer "
                    "(it does not take continue_final_message)."
                )
            # vLLM's and SGLang's extension: go on from the unfinished assistant turn.
            body.update(generation_prompt(request))
        return RemoteCall(body, prompt_tokens)

    def run_one(self, job: Job) -> None:
        call = job.state if job.state is not None else self.prepare(job.request)
        try:
            self._stream(job, call)
        except _Retry:
            # A kept-alive connection to a server that restarted: once more, afresh.
            self._client.close()
            self._client = self._new_client()
            self._stream(job, call, retry=False)

    def _stream(self, job: Job, call: RemoteCall, retry: bool = True) -> None:
        splitter = ThoughtSplitter()
        first_token_at = None
        finish_reason = "stop"
        usage = {}
        completion_chunks = 0
        try:
            with self._client.stream(
                "POST", f"{self.base_url}/v1/chat/completions", json=call.body
            ) as response:
                if response.status_code != 200:
                    raise EngineError(error_message(response))
                for chunk in _chunks(response):
                    usage = chunk.get("usage") or usage
                    for choice in chunk.get("choices") or []:
                        delta = choice.get("delta") or {}
                        pieces = []
                        # vLLM now says `reasoning`, SGLang and older vLLM
                        # `reasoning_content`; a server that sends both means one text.
                        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                        if reasoning:
                            pieces.append(("thinking", reasoning))
                        if delta.get("content"):
                            # A server without a reasoning parser leaves the markers in.
                            pieces += list(splitter.feed(delta["content"]))
                        for kind, text in pieces:
                            first_token_at = first_token_at or time.perf_counter()
                            completion_chunks += 1
                            job.emit(Delta(kind, text))
                        finish_reason = _FINISH.get(choice.get("finish_reason"), finish_reason)
                    if job.should_stop():
                        finish_reason = "cancelled"  # leaving the stream stops the server
                        break
        except httpx.HTTPError as error:
            if retry and first_token_at is None and isinstance(error, _STALE_CONNECTION):
                raise _Retry from error
            job.fail(f"The engine at {self.base_url} stopped answering ({error}).", "unavailable")
            return
        for kind, text in splitter.flush():
            job.emit(Delta(kind, text))
        job.emit(
            Finished(
                reason=finish_reason,
                # A stream left early (Stop, a stop sequence) has no usage: the
                # prompt as counted here stands in.
                prompt_tokens=int(usage.get("prompt_tokens") or call.prompt_tokens or 0),
                completion_tokens=int(usage.get("completion_tokens") or completion_chunks),
                first_token_seconds=None
                if first_token_at is None
                else first_token_at - job.started,
                total_seconds=time.perf_counter() - job.started,
            )
        )


# Fields of vLLM's and SGLang's OpenAI servers beyond OpenAI's own, sent only
# to a server that takes them (transformers serve refuses unknown fields).
class _Retry(Exception):
    """The request failed before any answer on a connection that had gone stale."""


_STALE_CONNECTION = (httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError)


def _chunks(response: httpx.Response):
    """The JSON data of each Server-Sent Event, until [DONE]."""
    for line in response.iter_lines():
        if not line.startswith("data:"):
            continue
        data = line[len("data:") :].strip()
        if data == "[DONE]":
            return
        chunk = json.loads(data)
        if "error" in chunk:
            raise EngineError(str(chunk["error"].get("message", "The engine failed.")))
        yield chunk
