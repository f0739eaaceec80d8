"""Which engine serves the model on this machine, and why; building and loading it.

As the original tool documents it: SGLang when the machine runs Linux, has
an NVIDIA GPU of compute capability 8.0 or newer and has `sglang` installed,
unless --force-transformers; Transformers everywhere else. With --engine-url
the model runs on another server and nothing is loaded here.
"""

from __future__ import annotations

import importlib.util
import logging
import platform
from dataclasses import dataclass

from inference.engine import Engine, EngineError
from inference.model_files import local_model, locate_model
from inference.registry import ModelSpec, model_spec_for
from inference.remote_engine import RemoteEngine
from medserver_site.config import ServerConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Platform:
    """The facts the choice depends on."""

    system: str  # "Linux", "Windows", "Darwin"
    gpu_capability: tuple[int, int] | None  # compute capability of GPU 0, None without CUDA
    gpu_name: str = ""
    sglang_installed: bool = False

    @classmethod
    def detect(cls) -> Platform:
        import torch

        capability, name = None, ""
        if torch.cuda.is_available():
            capability = tuple(torch.cuda.get_device_capability(0))
            name = torch.cuda.get_device_name(0)
        return cls(
            system=platform.system(),
            gpu_capability=capability,
            gpu_name=name,
            sglang_installed=importlib.util.find_spec("sglang") is not None,
        )


@dataclass(frozen=True)
class EngineChoice:
    engine: str  # "remote", "sglang" or "transformers"
    reason: str


def choose_engine(config: ServerConfig, facts: Platform) -> EngineChoice:
    """Decide the engine from the flags and the platform facts."""
    if config.engine_url:
        return EngineChoice("remote", f"--engine-url {config.engine_url}")
    if config.force_transformers:
        return EngineChoice("transformers", "--force-transformers")
    if facts.system != "Linux":
        return EngineChoice("transformers", f"SGLang runs on Linux only; this is {facts.system}")
    if facts.gpu_capability is None:
        return EngineChoice("transformers", "no NVIDIA GPU with CUDA was found")
    capability = ".".join(map(str, facts.gpu_capability))
    if facts.gpu_capability < (8, 0):
        return EngineChoice(
            "transformers", f"the GPU's compute capability {capability} is below 8.0"
        )
    if not facts.sglang_installed:
        return EngineChoice(
            "transformers", "sglang is not installed (pip install 'medserver[sglang]')"
        )
    return EngineChoice(
        "sglang", f"Linux, {facts.gpu_name or 'NVIDIA GPU'} (compute {capability}), sglang"
    )


def load_engine(config: ServerConfig, facts: Platform | None = None) -> Engine:
    """Build and load the chosen engine; fall back to Transformers if SGLang fails."""
    choice = choose_engine(config, facts or Platform.detect())
    log.info("Engine: %s (%s)", choice.engine, choice.reason)
    spec = model_spec_for(config.model)
    if choice.engine == "remote":
        engine = RemoteEngine(
            config.engine_url,
            spec,
            api_key=config.engine_api_key,
            model=config.engine_model,
            **_remote_settings(config, local_model(spec, config.data_dir)),
        )
        return _loaded(engine, choice.reason)
    model_dir = locate_model(spec, config.data_dir, config.hf_token)
    if choice.engine == "sglang":
        if config.quantize:
            log.warning(
                "SGLang serves bfloat16 and ignores -q; for 4-bit weights use "
                "--force-transformers -q."
            )
        from inference.sglang_engine import ChildServerEngine, sglang_command

        engine = ChildServerEngine(
            spec,
            lambda port, key: sglang_command(
                model_dir,
                spec,
                port=port,
                api_key=key,
                context=config.max_model_len,
                memory=config.gpu_memory_utilization,
            ),
            name="sglang",
            **_remote_settings(config, model_dir),
        )
        try:
            return _loaded(engine, choice.reason)
        except EngineError as error:
            engine.close()
            log.error("SGLang could not start (%s); falling back to Transformers", error)
            return transformers_engine(
                config, model_dir, spec, f"fallback: SGLang could not start ({error})"
            )
    return transformers_engine(config, model_dir, spec, choice.reason)


def _remote_settings(config: ServerConfig, model_dir) -> dict:
    """What a remote engine needs beyond its address: the model's files (to count
    prompts and check the server's), the context and how many answers at once."""
    return {
        "model_dir": model_dir,
        "max_model_len": config.max_model_len,
        "max_concurrency": config.engine_max_concurrency,
    }


def transformers_engine(config: ServerConfig, model_dir, spec: ModelSpec, reason: str) -> Engine:
    from inference.transformers_engine import TransformersEngine

    engine = TransformersEngine(
        model_dir, spec, max_model_len=config.max_model_len, quantize=config.quantize
    )
    return _loaded(engine, reason)


def fallback_engine(config: ServerConfig, reason: str) -> Engine:
    """The Transformers engine, for when the running engine gave up."""
    spec = model_spec_for(config.model)
    model_dir = locate_model(spec, config.data_dir, config.hf_token)
    return transformers_engine(config, model_dir, spec, f"fallback: {reason}")


def _loaded(engine: Engine, reason: str) -> Engine:
    engine.load()
    engine.choice_reason = reason
    return engine
