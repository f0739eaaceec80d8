"""Random-weight Gemma 3 models of a given shape, for the GPU benchmarks.

Nothing is downloaded: the demo model's tokenizer gives the token ids, the
configuration gives the shape (MedGemma 1.5 4B's real one, or a tiny one for a
CPU smoke run), and the weights are random, seeded, built on the device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Shape:
    """The sizes of a Gemma3ForConditionalGeneration (text model and SigLIP vision tower)."""

    name: str
    vocab_size: int | None  # None: the tokenizer's own size
    hidden_size: int
    intermediate_size: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    sliding_window: int
    vision_hidden_size: int
    vision_intermediate_size: int
    vision_layers: int
    vision_heads: int
    image_size: int
    image_tokens: int  # soft tokens per image (mm_tokens_per_image)


# google/medgemma-1.5-4b-it's config.json.
MEDGEMMA_4B = Shape(
    name="MedGemma 1.5 4B",
    vocab_size=262_208,
    hidden_size=2560,
    intermediate_size=10_240,
    layers=34,
    heads=8,
    kv_heads=4,
    head_dim=256,
    sliding_window=1024,
    vision_hidden_size=1152,
    vision_intermediate_size=4304,
    vision_layers=27,
    vision_heads=16,
    image_size=896,
    image_tokens=256,
)

# The demo model's sizes (inference/demo_model.py): seconds on a CPU.
TINY = Shape(
    name="tiny (demo model sizes)",
    vocab_size=None,
    hidden_size=64,
    intermediate_size=128,
    layers=2,
    heads=2,
    kv_heads=1,
    head_dim=32,
    sliding_window=16,
    vision_hidden_size=32,
    vision_intermediate_size=64,
    vision_layers=1,
    vision_heads=2,
    image_size=56,
    image_tokens=4,
)


def gemma3_config(shape: Shape, tokenizer):
    """Gemma3ForConditionalGeneration's configuration of `shape`, ids from `tokenizer`."""
    from transformers import Gemma3Config, Gemma3TextConfig, SiglipVisionConfig

    ids = tokenizer.convert_tokens_to_ids
    # 5 local (sliding-window) layers to 1 global, as in Gemma 3 (a tiny model's
    # last layer is global, so that it has both kinds).
    layer_types = [
        "full_attention" if (i + 1) % 6 == 0 else "sliding_attention" for i in range(shape.layers)
    ]
    if "full_attention" not in layer_types:
        layer_types[-1] = "full_attention"
    text = Gemma3TextConfig(
        vocab_size=shape.vocab_size or len(tokenizer),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.kv_heads,
        head_dim=shape.head_dim,
        query_pre_attn_scalar=shape.head_dim,
        sliding_window=shape.sliding_window,
        layer_types=layer_types,
        rope_parameters={
            "full_attention": {"rope_type": "default", "rope_theta": 1_000_000.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
        },
        max_position_embeddings=131_072,
        pad_token_id=ids("<pad>"),
        bos_token_id=ids("<bos>"),
        eos_token_id=[ids("<eos>"), ids("<end_of_turn>")],
    )
    vision = SiglipVisionConfig(
        hidden_size=shape.vision_hidden_size,
        intermediate_size=shape.vision_intermediate_size,
        num_hidden_layers=shape.vision_layers,
        num_attention_heads=shape.vision_heads,
        image_size=shape.image_size,
        patch_size=14,
        vision_use_head=False,
    )
    return Gemma3Config(
        text_config=text,
        vision_config=vision,
        mm_tokens_per_image=shape.image_tokens,
        boi_token_index=tokenizer.boi_token_id,
        eoi_token_index=ids(tokenizer.eoi_token),
        image_token_index=tokenizer.image_token_id,
    )


def gemma3_processor(shape: Shape, tokenizer):
    """The processor a model of `shape` has: its image size, its soft tokens per image."""
    from transformers import Gemma3Processor
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

    return Gemma3Processor(
        image_processor=Gemma3ImageProcessorPil(
            size={"height": shape.image_size, "width": shape.image_size},
            image_mean=[0.5] * 3,
            image_std=[0.5] * 3,
        ),
        tokenizer=tokenizer,
        chat_template=tokenizer.chat_template,
        image_seq_length=shape.image_tokens,
    )


def build_model(config, tokenizer, device: str = "cuda"):
    """The model with seeded random weights, bf16, built on `device`.

    The vocabulary rows the demo tokenizer lacks are zeroed: their logits are 0,
    below the best of the others, so greedy decoding writes tokens the tokenizer
    can print. The matrix keeps its full size, so every step reads the same bytes.
    """
    from transformers import Gemma3ForConditionalGeneration, GenerationConfig

    torch.manual_seed(0)
    with torch.device(device):
        model = Gemma3ForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    with torch.no_grad():
        model.get_input_embeddings().weight[len(tokenizer) :] = 0
    model.generation_config = GenerationConfig(
        bos_token_id=config.text_config.bos_token_id,
        pad_token_id=config.text_config.pad_token_id,
        eos_token_id=config.text_config.eos_token_id,
    )
    return model.eval()


def weight_bytes(model) -> tuple[int, int]:
    """(all weights, the weights one decode step reads: the language model's, tied
    embedding included as the output projection), in bytes."""
    total = decode = 0
    for name, parameter in model.named_parameters():  # tied weights are listed once
        size = parameter.numel() * parameter.element_size()
        total += size
        if "vision_tower" not in name and "multi_modal_projector" not in name:
            decode += size
    return total, decode
