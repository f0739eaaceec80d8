"""MedServer's run-time configuration: one table of options, read once.

The `medserver` CLI parses its flags into a `ServerConfig`, writes it into the
environment with `to_environ()`, then starts Django; `settings.py` rebuilds the
same `ServerConfig` with `from_environ()`. `manage.py` and the test suite go
through `from_environ()` too, so every entry point agrees on every value.
The apps read it through chat.serving (the one reader of `settings.MEDSERVER`),
never the environment; the libraries get their part (`engine_config()`).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chat.rates import parse_rate
from inference.config import EngineConfig
from inference.registry import MODELS
from medserver_site.time_zone import parse_time_zone

MODEL_KEYS = tuple(MODELS)  # 4, 27, 27t, demo
LOG_LEVELS = ("debug", "info", "warning", "error")


def default_data_dir() -> Path:
    """Where the database, uploads and the demo model live unless told otherwise."""
    return Path.home() / ".medserver"


# --- value parsers: each takes the text a person typed and returns the value,
# or raises ValueError with a message that can stand alone on one line.


def parse_model(text: str) -> str:
    """Return a model key (4, 27, 27t, demo) or the absolute path of a model folder."""
    text = text.strip()
    if text in MODEL_KEYS:
        return text
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ValueError(f"model folder {path} has no config.json (is it a model folder?)")
        return str(path.resolve())
    raise ValueError(
        f"unknown model {text!r}: use 4, 27, 27t, demo, or the path of a local model folder"
    )


def _int_in(low: int, high: int | None, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{what} must be a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ValueError(f"{what} must be {bound}, got {value}")
        return value

    return parse


def _minutes_in(low: float, high: float, what: str) -> Callable[[str], float]:
    """Minutes, a fraction allowed (0.5 is 30 s): whole minutes come back as an int."""
    as_float = _float_in(low, high, what)

    def parse(text: str) -> float:
        value = as_float(text)
        return int(value) if value.is_integer() else value

    return parse


def _float_in(low: float, high: float, what: str, *, low_open: bool = False) -> Callable:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{what} must be a number, got {text!r}") from None
        too_low = value <= low if low_open else value < low
        if too_low or value > high or value != value:
            opener = "above" if low_open else "from"
            raise ValueError(f"{what} must be {opener} {low} up to {high}, got {text}")
        return value

    return parse


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_log_level(text: str) -> str:
    level = text.strip().lower()
    if level not in LOG_LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}, got {text!r}")
    return level


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected a yes/no value, got {text!r}")


def parse_host(text: str) -> str:
    host = text.strip()
    if not host or any(c.isspace() for c in host):
        raise ValueError(f"host must be an IP address or host name, got {text!r}")
    return host


def parse_data_dir(text: str) -> Path:
    path = Path(text).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise ValueError(f"data dir {path} exists and is not a folder")
    return path


def parse_existing_file(text: str) -> str:
    if not text.strip():
        return ""
    path = Path(text.strip()).expanduser()
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    return str(path.resolve())


def parse_python(text: str) -> str:
    """Return the absolute path of a Python interpreter ("" for none given).

    Symbolic links are kept: a virtual environment's bin/python is a link to the
    system's Python, and only through the link does it see the environment.
    """
    if not text.strip():
        return ""
    path = Path(text.strip()).expanduser()
    if not path.is_file():
        raise ValueError(f"no such Python: {path}")
    if not os.access(path, os.X_OK):
        raise ValueError(f"{path} is not executable (is it a Python interpreter?)")
    return str(path.absolute())


def parse_engine_url(text: str) -> str:
    url = text.strip().rstrip("/")
    if url and not re.match(r"^https?://[^/\s]+", url):
        raise ValueError(f"engine URL must start with http:// or https://, got {text!r}")
    return url


def _text(text: str) -> str:
    return text.strip()


def parse_listen_address(text: str) -> str:
    """HOST:PORT for a listener of its own ('' = none); IPv6 hosts in brackets."""
    text = text.strip()
    if not text:
        return ""
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"metrics address must look like 127.0.0.1:9464, got {text!r}")
    _int_in(1, 65535, "metrics port")(port)
    parse_host(host)
    return text


LOG_FORMATS = ("text", "json")


def parse_log_format(text: str) -> str:
    value = text.strip().lower()
    if value not in LOG_FORMATS:
        raise ValueError(f"log format must be text or json, got {text!r}")
    return value


def _opt(
    default: Any, parse: Callable[[str], Any], env: str | None = None, *, secret: bool = False
) -> Any:
    # A secret stays out of repr(), and so out of logs and error pages.
    return field(default=default, repr=not secret, metadata={"parse": parse, "env": env})


@dataclass(frozen=True)
class ServerConfig:
    """Every setting the CLI accepts, with the original tool's defaults."""

    model: str = _opt("demo", parse_model)
    host: str = _opt("0.0.0.0", parse_host)
    port: int = _opt(8000, _int_in(1, 65535, "port"))
    quantize: bool = _opt(False, parse_bool)
    force_transformers: bool = _opt(False, parse_bool)
    workers: int = _opt(1, _int_in(1, 64, "workers"))
    max_user_streams: int = _opt(1, _int_in(1, 1000, "max user streams"))
    rate_limit: str = _opt("20/minute", parse_rate)
    max_history_messages: int = _opt(100, _int_in(1, 100_000, "max history messages"))
    max_text_length: int = _opt(50_000, _int_in(1, 10_000_000, "max text length"))
    max_image_count: int = _opt(10, _int_in(0, 1000, "max image count"))
    max_payload_mb: int = _opt(20, _int_in(1, 4096, "max payload MB"))
    show_hardware_stats: bool = _opt(False, parse_bool)
    hf_token: str = _opt("", _text, env="HF_TOKEN", secret=True)
    max_model_len: int = _opt(8192, _int_in(256, 1_048_576, "max model length"))
    # None: SGLang picks its own fraction (it leaves more room for vision models).
    gpu_memory_utilization: float | None = _opt(
        None, _float_in(0.0, 1.0, "GPU memory utilization", low_open=True)
    )
    # The Python of an SGLang install; "" means the .venv-sglang install.sh made.
    sglang_python: str = _opt("", parse_python)
    log_level: str = _opt("info", parse_log_level)
    # One JSON object per log line, for the hospital's log collector.
    log_format: str = _opt("text", parse_log_format)
    # /metrics on the main port with this bearer token, and/or a listener of its own.
    metrics_token: str = _opt("", _text, secret=True)
    metrics_listen: str = _opt("", parse_listen_address)
    default_temperature: float = _opt(0.3, _float_in(0.0, 2.0, "default temperature"))
    default_top_p: float = _opt(0.95, _float_in(0.0, 1.0, "default top-p", low_open=True))
    allow_client_sampling_config: bool = _opt(True, parse_bool)
    # 0 means the model's own default (2048 tokens; 200 for the demo model).
    max_new_tokens: int = _opt(0, _int_in(0, 1_048_576, "max new tokens"))
    # An external OpenAI-compatible server (SGLang, vLLM) instead of a local model.
    engine_url: str = _opt("", parse_engine_url)
    engine_api_key: str = _opt("", _text, secret=True)
    engine_model: str = _opt("", _text)
    # Answers sent at once to --engine-url or the SGLang child (their server batches).
    engine_max_concurrency: int = _opt(256, _int_in(1, 100_000, "engine max concurrency"))
    max_batch_size: int = _opt(8, _int_in(1, 256, "max batch size"))
    max_queued_requests: int = _opt(64, _int_in(1, 100_000, "max queued requests"))
    # Stop an answer whose tail is one block repeated this many times; 0 = off.
    loop_guard: int = _opt(10, _int_in(0, 1000, "loop guard"))
    # Accounts and transport security.
    # Minutes; a fraction is seconds (0.4 is 24 s), for trying the sign-out without waiting.
    session_timeout: float = _opt(30, _minutes_in(0.1, 43_200, "session timeout (minutes)"))
    # The clinic's time zone for the page, exports and admin; "" = the system's.
    time_zone: str = _opt("", parse_time_zone)
    no_auth: bool = _opt(False, parse_bool)
    # Clients come through a reverse proxy on this machine: their addresses and
    # https from its X-Forwarded-* headers.
    behind_proxy: bool = _opt(False, parse_bool)
    ssl_certfile: str = _opt("", parse_existing_file)
    ssl_keyfile: str = _opt("", parse_existing_file)
    data_dir: Path = _opt(None, parse_data_dir)
    # Data lifecycle (lifecycle/): chats idle this many days are deleted daily (0 = kept
    # for ever); automatic backups kept from before migrating at start (0 = none taken).
    retention_days: int = _opt(0, _int_in(0, 36_500, "retention days"))
    upgrade_backups: int = _opt(3, _int_in(0, 100, "upgrade backups"))
    # Set in the environment (or .env) only, not by flags:
    # names a reverse proxy or the clinic's DNS gives this machine, comma-separated;
    allowed_hosts: str = _opt("", _text)
    # Django's signing key ("": one made once and kept in the data dir);
    secret_key: str = _opt("", _text, secret=True)
    # Django's debug pages, for development only.
    debug: bool = _opt(False, parse_bool)

    def __post_init__(self) -> None:
        if self.data_dir is None:
            object.__setattr__(self, "data_dir", default_data_dir())
        if bool(self.ssl_certfile) != bool(self.ssl_keyfile):
            raise ValueError("TLS needs both --ssl-certfile and --ssl-keyfile")
        if self.no_auth and not is_loopback(self.host):
            raise ValueError(
                f"--no-auth is only allowed with a loopback bind (-ip 127.0.0.1), not {self.host}: "
                "anyone on the network could read the chats"
            )

    @property
    def tls(self) -> bool:
        return bool(self.ssl_certfile)

    @staticmethod
    def env_name(name: str) -> str:
        """The environment variable that carries the option `name`."""
        meta = {f.name: f.metadata for f in dataclasses.fields(ServerConfig)}[name]
        return meta["env"] or f"MEDSERVER_{name.upper()}"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> ServerConfig:
        """Build the config from the environment; raise ValueError naming a bad variable."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(cls.env_name(f.name))
            if raw is None or (raw == "" and f.name != "hf_token"):
                continue
            try:
                values[f.name] = f.metadata["parse"](raw)
            except ValueError as error:
                raise ValueError(f"{cls.env_name(f.name)}: {error}") from None
        return cls(**values)

    def to_environ(self) -> dict[str, str]:
        """Return the environment variables that make `from_environ` rebuild this config."""
        env = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:  # unset: an empty variable, which from_environ skips
                env[self.env_name(f.name)] = ""
                continue
            env[self.env_name(f.name)] = (
                ("1" if value else "0") if isinstance(value, bool) else str(value)
            )
        return env

    def engine_config(self) -> EngineConfig:
        """The part of this configuration the inference library needs."""
        return EngineConfig(
            **{name: getattr(self, name) for name in _ENGINE_FIELDS},
        )

    @property
    def max_payload_bytes(self) -> int:
        """The largest image (or other upload) accepted, in bytes."""
        return self.max_payload_mb * 1024 * 1024

    @property
    def max_request_bytes(self) -> int:
        """The largest request body: a message's images base64-encoded, plus its text."""
        images = self.max_payload_bytes * max(1, self.max_image_count) * 4 // 3
        return images + 4 * self.max_text_length + 1024 * 1024


_ENGINE_FIELDS = tuple(f.name for f in dataclasses.fields(EngineConfig))
