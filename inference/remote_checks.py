"""What a remote engine checks of its server at load, so that what is asked is what the model sees.

Its context length, which non-OpenAI fields it takes, that it serves the model
-m names (its prompts count as -m's template renders them) and that it sees
images (a test image raises the prompt's token count). `ServerChecks` is a part
of `inference.remote_engine.RemoteEngine`, kept here to be read on its own.
"""

from __future__ import annotations

import base64
import io
import logging

import httpx
from PIL import Image

from inference.engine import ChatTurn, EngineError, GenerationRequest, ImageSource, Sampling
from inference.prompting import build_messages
from inference.registry import ModelSpec
from inference.tokenizing import PromptEncoder

log = logging.getLogger("inference.remote_engine")

_IMAGE_TYPES = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"RIFF": "image/webp"}


class ServerChecks:
    """RemoteEngine's checks at load; they set its `context`, `extensions`,
    `sees_images`, `encoder` and `checks`."""

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
            "messages": build_messages(request, self.spec, data_uri_part),
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
            raise _ProbeRefused(error_message(response))
        return response.json()


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


def data_uri_part(source: ImageSource, number: int) -> dict:
    data = source if isinstance(source, bytes) else source.read_bytes()
    kind = next((t for magic, t in _IMAGE_TYPES.items() if data.startswith(magic)), None)
    if kind is None:
        raise EngineError(f"Attached image {number} could not be read.")
    uri = f"data:{kind};base64,{base64.b64encode(data).decode()}"
    return {"type": "image_url", "image_url": {"url": uri}}


def error_message(response: httpx.Response) -> str:
    response.read()
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = f"status {response.status_code}"
    return f"The engine refused the request: {message}"
