"""The models MedServer can serve, and how a `-m` value maps to one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelSpec:
    """What MedServer knows about a model before loading it."""

    key: str
    label: str
    hf_id: str | None  # None for models that never come from the hub
    multimodal: bool
    can_think: bool
    size: str
    min_vram_gb: int | None
    local_path: Path | None = None
    answer_tokens: int = 2048  # default length limit of one answer
    # Tokens one image takes in the prompt: Gemma 3's vision tower gives 256
    # soft tokens per image (the processor's mm_tokens_per_image).
    image_tokens: int = 256

    @property
    def api_id(self) -> str:
        """The model's name in the JSON and OpenAI-compatible APIs."""
        if self.hf_id:
            return self.hf_id
        return "medserver-demo" if self.key == "demo" else self.local_path.name


MODELS: dict[str, ModelSpec] = {
    "4": ModelSpec("4", "MedGemma 1.5 4B", "google/medgemma-1.5-4b-it", True, False, "~8 GB", 16),
    "27": ModelSpec("27", "MedGemma 27B", "google/medgemma-27b-it", True, True, "~54 GB", 32),
    "27t": ModelSpec(
        "27t", "MedGemma 27B Text", "google/medgemma-27b-text-it", False, True, "~54 GB", 32
    ),
    "demo": ModelSpec(
        "demo",
        "MedServer demo (tiny, random weights)",
        None,
        True,
        True,
        "~2 MB",
        None,
        # Random weights write random words: a short answer shows the flow.
        answer_tokens=200,
        image_tokens=4,  # inference.demo_model.MM_TOKENS_PER_IMAGE
    ),
}


def model_spec_for(value: str) -> ModelSpec:
    """Return the spec for a model key or a local model folder.

    A folder is described from its config.json: multimodal when it carries a
    vision config. Raise KeyError for an unknown key.
    """
    if value in MODELS:
        return MODELS[value]
    path = Path(value)
    multimodal = _folder_is_multimodal(path)
    return ModelSpec(
        key="local",
        label=path.name,
        hf_id=None,
        multimodal=multimodal,
        can_think=True,
        size="local",
        min_vram_gb=None,
        local_path=path,
    )


def _folder_is_multimodal(path: Path) -> bool:
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return "vision_config" in config
