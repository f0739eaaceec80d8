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

import base64
import io
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from PIL import Image

from inference.engine import (
    ChatTurn,
    Delta,
    Engine,
    EngineError,
    Finished,
    GenerationRequest,
    ImageSource,
    Job,
    Sampling,
)
from inference.prompting import build_messages, generation_prompt
from inference.registry import ModelSpec
from inference.thinking import ThoughtSplitter
from inference.tokenizing import PromptEncoder

log = logging.getLogger(__name__)

_FINISH = {"stop": "stop", "length": "length"}
_IMAGE_TYPES = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"RIFF": "image/webp"}


@dataclass(frozen=True)
class RemoteCall:
    """A request as the server gets it, and its prompt's length when counted here."""

    body: dict
    prompt_tokens: int | None


class RemoteEngine(Engine):
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

    def load(self) -> None:
        """Find the model on the server and check that it serves what -m names:
        its context, the fields it takes, the prompts it renders and whether it
        sees images. Raise EngineError when it cannot serve MedServer's requests."""
        served = self._served_model()
        self.model = served["id"]
        advertised = served.get("max_model_len") or served.get("context_length")
        if isinstance(advertised, int) and 0 < advertised < self.context:
            self.context = advertised
        self.checks["context"] = f"{self.context} tokens"
        if self.model_dir is not None:
            self.encoder = PromptEncoder(self.spec, self.model_dir)
        self.extensions = {name for name, value in _EXTENSIONS.items() if self._takes(name, value)}
        self._check_model(served)
        if self.spec.multimodal:
            self._check_images()
        log.info(
            "Using the engine at %s, model %s (%s)",
            self.base_url,
            self.model,
            "; ".join(f"{k}: {v}" for k, v in self.checks.items()),
        )

    def _served_model(self) -> dict:
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
        served = [m for m in response.json().get("data", []) if isinstance(m, dict) and "id" in m]
        if not served:
            raise EngineError(f"The engine at {self.base_url} serves no model.")
        if self.model:
            chosen = [m for m in served if m["id"] == self.model]
            if not chosen:
                names = ", ".join(m["id"] for m in served)
                raise EngineError(
                    f"The engine at {self.base_url} does not serve {self.model!r} "
                    f"(it serves {names})."
                )
            return chosen[0]
        return served[0]

    def _takes(self, name: str, value: object) -> bool:
        """Whether the server accepts the non-OpenAI field `name` (vLLM's and
        SGLang's extensions); a strict server refuses unknown fields."""
        try:
            self._probe((ChatTurn("user", "Hi"),), **{name: value})
        except _ProbeRefused:
            return False
        return True

    def _check_model(self, served: dict) -> None:
        """The thinking, image and budget settings follow -m: refuse a server of
        another model. A server that names the model otherwise passes when it
        renders MedServer's probe prompt to as many tokens as -m's template does."""
        named = _same_model(served, self.spec)
        if self.encoder is None:
            if not named:
                raise EngineError(self._mismatch(served, "its name does not match"))
            self.checks["model"] = "named as -m"
            return
        probe = (ChatTurn("system", _PROBE_SYSTEM), ChatTurn("user", _PROBE_QUESTION))
        request = GenerationRequest(probe, Sampling(1, 0.0, 1.0))
        local = self.encoder.count(request, 1 << 30)
        try:
            remote = self._prompt_tokens(probe)
        except _ProbeRefused as refused:
            if not named:
                raise EngineError(
                    self._mismatch(served, f"its prompts cannot be counted ({refused})")
                ) from None
            self.checks["model"] = f"named as -m; prompts not compared ({refused})"
            return
        if remote == local:
            self.checks["model"] = f"prompts render as -m's ({local} tokens for the probe)"
            return
        found = f"the probe prompt is {remote} tokens there and {local} with -m's template"
        if not named:
            raise EngineError(self._mismatch(served, found))
        self.checks["model"] = f"named as -m, but {found}"
        log.warning("The engine at %s: %s", self.base_url, self.checks["model"])

    def _mismatch(self, served: dict, why: str) -> str:
        return (
            f"The engine at {self.base_url} serves {served['id']!r}, which is not "
            f"{self.spec.label} (-m {self.spec.key}): {why}. MedServer's thinking, image and "
            "token settings follow -m; start it with the -m of the model that server runs "
            "(-m FOLDER with that model's files lets MedServer check its prompts), or point "
            "--engine-url at a server of this model."
        )

    def _check_images(self) -> None:
        """A one-image probe: the prompt must grow by at least an image's tokens,
        else the server drops images (SGLang without --enable-multimodal) and
        image requests are refused instead of answered about nothing."""
        question = "Describe the image."
        try:
            text = self._prompt_tokens((ChatTurn("user", question),))
            image = self._prompt_tokens((ChatTurn("user", question, (_probe_image(),)),))
        except _ProbeRefused as refused:
            self.checks["images"] = f"not seen: a test image was refused ({refused})"
        else:
            added = image - text
            self.sees_images = added >= self.spec.image_tokens
            seen = "seen" if self.sees_images else "NOT seen"
            self.checks["images"] = (
                f"{seen}: a test image added {added} prompt tokens "
                f"(at least {self.spec.image_tokens} expected)"
            )
        if not self.sees_images:
            log.error("The engine at %s: images %s", self.base_url, self.checks["images"])

    def _prompt_tokens(self, turns: tuple[ChatTurn, ...]) -> int:
        usage = self._probe(turns).get("usage") or {}
        tokens = usage.get("prompt_tokens")
        if not isinstance(tokens, int):
            raise _ProbeRefused("it reports no token usage")
        return tokens

    def _probe(self, turns: tuple[ChatTurn, ...], **extra) -> dict:
        """One token of an answer to `turns`, not streamed; the response's JSON."""
        request = GenerationRequest(turns, Sampling(1, 0.0, 1.0))
        body = {
            "model": self.model,
            "messages": build_messages(request, self.spec, _data_uri_part),
            "max_tokens": 1,
            "temperature": 0.0,
        }
        if "chat_template_kwargs" in self.extensions:
            # As every request is sent: the server adds no thinking instruction of its own.
            body["chat_template_kwargs"] = _EXTENSIONS["chat_template_kwargs"]
        body.update(extra)
        try:
            response = self._client.post(f"{self.base_url}/v1/chat/completions", json=body)
        except httpx.HTTPError as error:
            raise EngineError(
                f"The engine at {self.base_url} stopped answering ({error})."
            ) from None
        if response.status_code != 200:
            raise _ProbeRefused(_error_message(response))
        return response.json()

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
            "messages": build_messages(request, self.spec, _data_uri_part),
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
                    raise EngineError(_error_message(response))
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
_EXTENSIONS = {
    "top_k": 64,
    "chat_template_kwargs": {"enable_thinking": False},
    "ignore_eos": False,
    "continue_final_message": False,
}
_PROBE_SYSTEM = "You are MedServer's start-up check."
_PROBE_QUESTION = "Reply with one word."


def _same_model(served: dict, spec: ModelSpec) -> bool:
    """Whether the server's name for its model (or the folder it loaded) is -m's."""
    wanted = {spec.api_id, spec.hf_id or "", str(spec.local_path or "")}
    wanted = {_last_part(name) for name in wanted if name}
    names = {_last_part(str(served.get(key) or "")) for key in ("id", "root")}
    return bool(wanted & (names - {""}))


def _last_part(name: str) -> str:
    return name.rstrip("/").rsplit("/", 1)[-1].lower()


class _ProbeRefused(Exception):
    """The server refused a check request at load; the text says why."""


def _probe_image() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (128, 128, 128)).save(out, "PNG")
    return out.getvalue()


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
