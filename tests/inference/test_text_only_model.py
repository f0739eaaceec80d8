"""A text-only Gemma 3 (as MedGemma 27B text) loads as a causal model and refuses images."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoTokenizer, Gemma3ForCausalLM

from inference.config import EngineConfig
from inference.demo_model import ensure_demo_model
from inference.engine import ChatTurn, Delta, Failed, Finished, GenerationRequest, Sampling
from inference.engine_select import load_engine
from inference.registry import model_spec_for
from inference.worker import EngineWorker


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    """The demo model's language half, saved on its own like a text-only checkpoint."""
    root = tmp_path_factory.mktemp("text-only")
    demo = ensure_demo_model(root / "demo")
    torch.manual_seed(0)
    model = Gemma3ForCausalLM(AutoConfig.from_pretrained(demo).text_config)
    folder = root / "medgemma-text-tiny"
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(demo).save_pretrained(folder)
    return folder


def test_a_folder_without_vision_is_a_text_model(text_model):
    spec = model_spec_for(str(text_model))
    assert not spec.multimodal
    engine = load_engine(EngineConfig(model=str(text_model)))
    assert type(engine.model).__name__ == "Gemma3ForCausalLM"
    assert engine.processor is None


@pytest.mark.asyncio
async def test_text_model_answers_text_and_refuses_images(text_model, tmp_path):
    worker = EngineWorker(lambda: load_engine(EngineConfig(model=str(text_model))), "text").start()
    try:
        assert worker.wait_ready(60), worker.state.reason
        sampling = Sampling(8, 0.0, 1.0)
        text_request = GenerationRequest((ChatTurn("user", "Summarize sepsis care"),), sampling)
        image_request = GenerationRequest(
            (ChatTurn("user", "Look", (b"\x89PNG not really",)),), sampling
        )
        events = [event async for event in worker.submit(text_request).events()]
        assert isinstance(events[-1], Finished) and events[-1].completion_tokens > 0
        assert any(isinstance(e, Delta) for e in events)
        refused = [event async for event in worker.submit(image_request).events()]
        assert isinstance(refused[-1], Failed)
        assert "reads text only" in refused[-1].message
    finally:
        worker.stop()
