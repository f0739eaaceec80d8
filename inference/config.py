"""What the inference library needs to know to serve a model: handed to it by the site.

`medserver_site.config.ServerConfig.engine_config()` builds one from the CLI's
flags; a bench or a test may build one directly. Defaults are the CLI's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class EngineConfig:
    """The engine's part of the server's configuration."""

    model: str = "demo"  # a key of inference.registry.MODELS or a model folder
    data_dir: Path = field(default_factory=lambda: Path.home() / ".medserver")
    hf_token: str = field(default="", repr=False)
    max_model_len: int = 8192
    quantize: bool = False
    force_transformers: bool = False
    # None: SGLang picks its own fraction (it leaves more room for vision models).
    gpu_memory_utilization: float | None = None
    sglang_python: str = ""  # "" means the .venv-sglang install.sh made
    # An external OpenAI-compatible server instead of a local model.
    engine_url: str = ""
    engine_api_key: str = field(default="", repr=False)
    engine_model: str = ""
    engine_max_concurrency: int = 256  # answers sent at once to a remote or SGLang server
    max_batch_size: int = 8  # answers generated together in process
    max_queued_requests: int = 64  # waiting beside those being written; more are refused
    loop_guard: int = 10  # see inference.stops.LoopGuard; 0 = off
