"""Which engine serves the model on this machine, and building it."""

from __future__ import annotations

import logging

from inference.engine import Engine
from inference.model_files import locate_model
from inference.registry import model_spec_for
from inference.transformers_engine import TransformersEngine
from medserver_site.config import ServerConfig

log = logging.getLogger(__name__)


def load_engine(config: ServerConfig) -> Engine:
    """Locate the model's files, build the engine for this machine, and load it."""
    spec = model_spec_for(config.model)
    model_dir = locate_model(spec, config.data_dir, config.hf_token)
    engine = TransformersEngine(
        model_dir, spec, max_model_len=config.max_model_len, quantize=config.quantize
    )
    engine.load()
    return engine
