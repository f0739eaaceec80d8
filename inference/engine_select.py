"""Which engine serves the model on this machine, and why; building and loading it.

As the original tool documents it: SGLang when the machine runs Linux, has
an NVIDIA GPU of compute capability 8.0 or newer and has SGLang installed,
unless --force-transformers or -q; Transformers everywhere else. With
--engine-url the model runs on another server and nothing is loaded here.
SGLang lives in an environment of its own (.venv-sglang, or --sglang-python),
since it pins other torch and transformers releases than MedServer.
"""

from __future__ import annotations

import logging
import platform
import threading
from dataclasses import dataclass

from inference.config import EngineConfig
from inference.engine import Engine, EngineError
from inference.model_files import local_model, locate_model
from inference.registry import ModelSpec, model_spec_for
from inference.remote_engine import RemoteEngine
from inference.sglang_engine import (
    ChildServerEngine,
    default_sglang_python,
    environment_of,
    find_sglang,
    sglang_command,
    tensor_parallel_size,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Platform:
    """The facts the choice depends on."""

    system: str  # "Linux", "Windows", "Darwin"
    gpu_capability: tuple[int, int] | None  # compute capability of GPU 0, None without CUDA
    gpu_name: str = ""
    sglang_installed: bool = False
    gpu_count: int = 1  # CUDA GPUs this process may use
    sglang_version: str = ""
    sglang_python: str = ""  # the interpreter that runs SGLang's server
    sglang_problem: str = ""  # why SGLang is not installed, when it is not

    @classmethod
    def detect(cls, sglang_python: str = "") -> Platform:
        """This machine's facts (asked once per interpreter path, then remembered)."""
        with _detect_lock:
            if sglang_python not in _detected:
                _detected[sglang_python] = cls._detect(sglang_python)
            return _detected[sglang_python]

    @classmethod
    def _detect(cls, sglang_python: str) -> Platform:
        import torch

        capability, name, count = None, "", 0
        if torch.cuda.is_available():
            capability = tuple(torch.cuda.get_device_capability(0))
            name = torch.cuda.get_device_name(0)
            count = torch.cuda.device_count()
        sglang = find_sglang(sglang_python or default_sglang_python())
        return cls(
            system=platform.system(),
            gpu_capability=capability,
            gpu_name=name,
            sglang_installed=bool(sglang.version),
            gpu_count=count,
            sglang_version=sglang.version,
            sglang_python=sglang.python,
            sglang_problem=sglang.problem,
        )


_detect_lock = threading.Lock()
_detected: dict[str, Platform] = {}


@dataclass(frozen=True)
class EngineChoice:
    engine: str  # "remote", "sglang" or "transformers"
    reason: str


def choose_engine(config: EngineConfig, facts: Platform) -> EngineChoice:
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
    if config.quantize:
        # SGLang would serve bfloat16 (a 27B then runs out of memory on a smaller GPU).
        return EngineChoice("transformers", "-q: 4-bit NF4 runs on Transformers (bitsandbytes)")
    if not facts.sglang_installed:
        why = f" ({facts.sglang_problem})" if facts.sglang_problem else ""
        return EngineChoice(
            "transformers",
            f"SGLang is not installed{why}; install.sh makes .venv-sglang on Linux with a GPU "
            "of compute capability 8.0 or newer, or give --sglang-python PATH",
        )
    gpus = facts.gpu_name or "NVIDIA GPU"
    tp_size = tensor_parallel_size(facts.gpu_count)
    if tp_size > 1:
        gpus = f"{tp_size} × {gpus}"
    return EngineChoice(
        "sglang",
        f"Linux, {gpus} (compute {capability}), {sglang_description(facts)}",
    )


ENGINE_LABELS = {"remote": "remote server", "sglang": "SGLang", "transformers": "Transformers"}


def planned_engine(config: EngineConfig, facts: Platform | None = None) -> str:
    """The start banner's line: the engine that will load first, and why.

    'Engine: SGLang (Linux, NVIDIA H200 (compute 9.0), SGLang 0.5.23 (/srv/…/bin/python))'
    """
    choice = choose_engine(config, facts or Platform.detect(config.sglang_python))
    return f"Engine: {ENGINE_LABELS[choice.engine]} ({choice.reason})"


def sglang_description(facts: Platform) -> str:
    """Which SGLang, and from where: 'SGLang 0.5.23 (/srv/medserver/.venv-sglang/bin/python)'."""
    return f"SGLang {facts.sglang_version or '?'} ({facts.sglang_python or '?'})"


def load_engine(config: EngineConfig, facts: Platform | None = None) -> Engine:
    """Build and load the chosen engine; fall back to Transformers if SGLang fails."""
    facts = facts or Platform.detect(config.sglang_python)
    choice = choose_engine(config, facts)
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
        python = facts.sglang_python or config.sglang_python or str(default_sglang_python())
        tp_size = tensor_parallel_size(facts.gpu_count)
        engine = ChildServerEngine(
            spec,
            lambda port, key: sglang_command(
                model_dir,
                spec,
                python=python,
                port=port,
                api_key=key,
                context=config.max_model_len,
                memory=config.gpu_memory_utilization,
                tp_size=tp_size,
            ),
            name="sglang",
            env=environment_of(python),
            **_remote_settings(config, model_dir),
        )
        try:
            return _loaded(engine, choice.reason)
        except EngineError as error:
            engine.close()
            log.error("SGLang could not start (%s); falling back to Transformers", error)
            return transformers_engine(
                config,
                model_dir,
                spec,
                f"fallback: SGLang could not start ({error}); it was {sglang_description(facts)}",
            )
    return transformers_engine(config, model_dir, spec, choice.reason)


def _remote_settings(config: EngineConfig, model_dir) -> dict:
    """What a remote engine needs beyond its address: the model's files (to count
    prompts and check the server's), the context and how many answers at once."""
    return {
        "model_dir": model_dir,
        "max_model_len": config.max_model_len,
        "max_concurrency": config.engine_max_concurrency,
    }


def transformers_engine(config: EngineConfig, model_dir, spec: ModelSpec, reason: str) -> Engine:
    from inference.transformers_engine import TransformersEngine

    engine = TransformersEngine(
        model_dir, spec, max_model_len=config.max_model_len, quantize=config.quantize
    )
    return _loaded(engine, reason)


def fallback_engine(config: EngineConfig, reason: str) -> Engine:
    """The Transformers engine, for when the running engine gave up."""
    spec = model_spec_for(config.model)
    model_dir = locate_model(spec, config.data_dir, config.hf_token)
    return transformers_engine(config, model_dir, spec, f"fallback: {reason}")


def _loaded(engine: Engine, reason: str) -> Engine:
    engine.load()
    engine.choice_reason = reason
    return engine
