"""An engine that streams from an OpenAI-compatible server.

One client for two cases: `--engine-url`, an SGLang or vLLM deployment (or
another MedServer) elsewhere on the network, and the SGLang server MedServer
starts itself (inference/sglang_engine.py). That server batches concurrent
requests, so each request runs on a thread of its own here.
"""

from __future__ import annotations

import base64
import json
import logging
import time

import httpx

from inference.engine import Delta, Engine, EngineError, Finished, ImageSource, Job
from inference.prompting import build_messages, generation_prompt
from inference.registry import ModelSpec
from inference.thinking import ThoughtSplitter

log = logging.getLogger(__name__)

_FINISH = {"stop": "stop", "length": "length"}
_IMAGE_TYPES = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"RIFF": "image/webp"}


class RemoteEngine(Engine):
    name = "remote"
    batched = False

    def __init__(
        self, base_url: str, spec: ModelSpec, *, api_key: str = "", model: str = ""
    ) -> None:
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.spec = spec
        self.api_key = api_key
        self.model = model
        self.failed_reason: str | None = None
        self._client = self._new_client()

    def _new_client(self) -> httpx.Client:
        return httpx.Client(
            timeout=httpx.Timeout(connect=10, read=600, write=60, pool=60),
            headers={"Authorization": f"Bearer {self.api_key}"} if self.api_key else {},
        )

    def load(self) -> None:
        """Check the server answers and find the model's name there."""
        try:
            response = self._client.get(f"{self.base_url}/v1/models")
        except httpx.HTTPError as error:
            raise EngineError(
                f"The engine at {self.base_url} cannot be reached ({error})."
            ) from None
        if response.status_code in (401, 403):
            raise EngineError(f"The engine at {self.base_url} refused the API key.")
        if response.status_code != 200:
            raise EngineError(
                f"The engine at {self.base_url} answered {response.status_code} to /v1/models."
            )
        served = [model["id"] for model in response.json().get("data", [])]
        if not served:
            raise EngineError(f"The engine at {self.base_url} serves no model.")
        if self.model and self.model not in served:
            raise EngineError(
                f"The engine at {self.base_url} does not serve {self.model!r} "
                f"(it serves {', '.join(served)})."
            )
        self.model = self.model or served[0]
        log.info("Using the engine at %s, model %s", self.base_url, self.model)

    def describe(self) -> dict[str, str]:
        return {"url": self.base_url, "remote_model": self.model}

    def close(self) -> None:
        self._client.close()

    def run_one(self, job: Job) -> None:
        try:
            self._stream(job)
        except _Retry:
            # A kept-alive connection to a server that restarted: once more, afresh.
            self._client.close()
            self._client = self._new_client()
            self._stream(job, retry=False)

    def _stream(self, job: Job, retry: bool = True) -> None:
        request = job.request
        sampling = request.sampling
        body = {
            "model": self.model,
            "messages": build_messages(request, self.spec, _data_uri_part),
            "max_tokens": sampling.max_new_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "stream": True,
            "stream_options": {"include_usage": True},
            # The thinking instruction is in the messages already (build_messages);
            # a server that adds its own (MedServer) is asked not to.
            "chat_template_kwargs": {"enable_thinking": False},
        }
        if sampling.ignore_eos:
            body["ignore_eos"] = True  # vLLM's and SGLang's extension
        if request.continue_answer:
            # vLLM's and SGLang's extension: go on from the unfinished assistant turn.
            body.update(generation_prompt(request))
        splitter = ThoughtSplitter()
        first_token_at = None
        finish_reason = "stop"
        usage = {}
        completion_chunks = 0
        try:
            with self._client.stream(
                "POST", f"{self.base_url}/v1/chat/completions", json=body
            ) as response:
                if response.status_code != 200:
                    raise EngineError(_error_message(response))
                for chunk in _chunks(response):
                    usage = chunk.get("usage") or usage
                    for choice in chunk.get("choices") or []:
                        delta = choice.get("delta") or {}
                        pieces = []
                        if delta.get("reasoning_content"):
                            pieces.append(("thinking", delta["reasoning_content"]))
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
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or completion_chunks),
                first_token_seconds=None
                if first_token_at is None
                else first_token_at - job.started,
                total_seconds=time.perf_counter() - job.started,
            )
        )


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


def _error_message(response: httpx.Response) -> str:
    response.read()
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = f"status {response.status_code}"
    return f"The engine refused the request: {message}"


def _data_uri_part(source: ImageSource, number: int) -> dict:
    data = source if isinstance(source, bytes) else source.read_bytes()
    kind = next((t for magic, t in _IMAGE_TYPES.items() if data.startswith(magic)), None)
    if kind is None:
        raise EngineError(f"Attached image {number} could not be read.")
    uri = f"data:{kind};base64,{base64.b64encode(data).decode()}"
    return {"type": "image_url", "image_url": {"url": uri}}
