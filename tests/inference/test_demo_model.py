"""The offline demo model loads and behaves like MedGemma through the real loading path."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from inference.demo_model import (
    DEMO_MODEL_NAME,
    FORMAT_VERSION,
    MARKER_FILE,
    MM_TOKENS_PER_IMAGE,
    build_demo_model,
    ensure_demo_model,
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return ensure_demo_model(tmp_path_factory.mktemp("models") / DEMO_MODEL_NAME)


@pytest.fixture(scope="module")
def processor(model_dir):
    return AutoProcessor.from_pretrained(model_dir)


@pytest.fixture(scope="module")
def model(model_dir):
    return AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32)


def test_folder_loads_through_the_medgemma_path(model_dir, processor, model):
    assert type(processor).__name__ == "Gemma3Processor"
    assert type(processor.tokenizer).__name__ == "GemmaTokenizer"
    assert type(model).__name__ == "Gemma3ForConditionalGeneration"
    assert model.dtype == torch.float32
    assert (model_dir / "model.safetensors").is_file()
    marker = json.loads((model_dir / MARKER_FILE).read_text())
    assert marker == {"format": FORMAT_VERSION, "name": DEMO_MODEL_NAME}

    tok = processor.tokenizer
    assert [tok.pad_token_id, tok.eos_token_id, tok.bos_token_id, tok.unk_token_id] == [0, 1, 2, 3]
    assert model.config.text_config.vocab_size == len(tok)
    assert model.config.image_token_id == tok.convert_tokens_to_ids("<image_soft_token>")
    assert model.config.boi_token_id == tok.convert_tokens_to_ids("<start_of_image>")
    assert model.config.eoi_token_id == tok.convert_tokens_to_ids("<end_of_image>")
    assert model.generation_config.eos_token_id == [
        tok.convert_tokens_to_ids("<eos>"),
        tok.convert_tokens_to_ids("<end_of_turn>"),
    ]
    assert model.generation_config.pad_token_id == tok.pad_token_id


def test_plain_encode_prepends_bos_like_gemma(processor):
    tok = processor.tokenizer
    ids = tok("The patient has a fever.").input_ids
    assert ids[0] == tok.bos_token_id
    assert ids.count(tok.bos_token_id) == 1
    assert tok.decode(ids, skip_special_tokens=True) == "The patient has a fever."
    # Unknown characters fall back to bytes instead of <unk>.
    assert tok.decode(tok("Ünïcode ✓").input_ids, skip_special_tokens=True) == "Ünïcode ✓"


def test_thought_markers_are_single_tokens_that_survive_skip_special(processor):
    tok = processor.tokenizer
    for marker in ("<unused94>", "<unused95>"):
        assert len(tok.encode(marker, add_special_tokens=False)) == 1
    ids = tok.encode(
        "<unused94>thought\nCheck the film.<unused95>It is pneumonia.<end_of_turn><eos>",
        add_special_tokens=False,
    )
    assert ids[-2:] == [tok.convert_tokens_to_ids("<end_of_turn>"), tok.eos_token_id]
    assert (
        tok.decode(ids, skip_special_tokens=True)
        == "<unused94>thought\nCheck the film.<unused95>It is pneumonia."
    )


def test_chat_template_renders_gemma_turns(processor):
    messages = [
        {"role": "system", "content": "You are a careful radiologist."},
        {"role": "user", "content": "Hello there "},
        {"role": "assistant", "content": [{"type": "text", "text": "Hi. How can I help?"}]},
        {"role": "user", "content": [{"type": "text", "text": "Describe the chest X-ray."}]},
    ]
    expected = (
        "<bos><start_of_turn>user\nYou are a careful radiologist.\n\nHello there<end_of_turn>\n"
        "<start_of_turn>model\nHi. How can I help?<end_of_turn>\n"
        "<start_of_turn>user\nDescribe the chest X-ray.<end_of_turn>\n"
        "<start_of_turn>model\n"
    )
    assert processor.apply_chat_template(messages, add_generation_prompt=True) == expected
    assert (
        processor.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )
        == expected
    )
    without_prompt = processor.apply_chat_template(messages, add_generation_prompt=False)
    assert without_prompt == expected.removesuffix("<start_of_turn>model\n")

    ids = processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True
    )["input_ids"][0]
    assert ids.count(processor.tokenizer.bos_token_id) == 1  # the template's, not a second one
    tokens = processor.tokenizer.convert_ids_to_tokens(ids)
    assert tokens[-3:] == ["<start_of_turn>", "model", "\n"]


def test_chat_template_rejects_non_alternating_roles(processor):
    messages = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    with pytest.raises(Exception, match="alternate"):
        processor.apply_chat_template(messages)


def test_image_message_expands_and_generates(processor, model):
    image = Image.new("RGB", (100, 75), (200, 40, 90))  # not square, not 56: gets resized
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "You are a radiologist."}]},
        {
            "role": "user",
            "content": [{"type": "image", "image": image}, {"type": "text", "text": "Describe."}],
        },
    ]
    inputs = processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    assert inputs["pixel_values"].shape == (1, 3, 56, 56)
    tokens = processor.tokenizer.convert_ids_to_tokens(inputs["input_ids"][0])
    start = tokens.index("<start_of_image>")
    assert tokens[start : start + MM_TOKENS_PER_IMAGE + 2] == (
        ["<start_of_image>"] + ["<image_soft_token>"] * MM_TOKENS_PER_IMAGE + ["<end_of_image>"]
    )
    assert tokens.count("<image_soft_token>") == MM_TOKENS_PER_IMAGE
    assert inputs["token_type_ids"][0].sum().item() == MM_TOKENS_PER_IMAGE

    prompt_len = inputs["input_ids"].shape[1]
    out = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert prompt_len < out.shape[1] <= prompt_len + 5
    again = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert torch.equal(out, again)  # greedy decoding is deterministic
    assert isinstance(processor.decode(out[0, prompt_len:], skip_special_tokens=True), str)


def test_text_only_generate(processor, model):
    messages = [{"role": "user", "content": "What is the most likely diagnosis?"}]
    inputs = processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    assert "pixel_values" not in inputs
    prompt_len = inputs["input_ids"].shape[1]
    out = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert prompt_len < out.shape[1] <= prompt_len + 5


def test_ensure_is_idempotent(model_dir):
    marker = model_dir / MARKER_FILE
    before = (marker.stat().st_mtime_ns, (model_dir / "model.safetensors").stat().st_mtime_ns)
    assert ensure_demo_model(model_dir) == model_dir
    after = (marker.stat().st_mtime_ns, (model_dir / "model.safetensors").stat().st_mtime_ns)
    assert after == before
    # The staging folder was renamed away, nothing left beside the model.
    assert [p.name for p in model_dir.parent.iterdir()] == [model_dir.name]


@pytest.mark.parametrize(
    "marker_text", [None, '{"format": 0, "name": "medserver-demo"}', "garbage"]
)
def test_ensure_rebuilds_incomplete_folder(tmp_path, marker_text):
    target = tmp_path / DEMO_MODEL_NAME
    target.mkdir()
    (target / "config.json").write_text("{half written")
    if marker_text is not None:
        (target / MARKER_FILE).write_text(marker_text)

    assert ensure_demo_model(target) == target
    assert json.loads((target / MARKER_FILE).read_text())["format"] == FORMAT_VERSION
    assert json.loads((target / "config.json").read_text())["model_type"] == "gemma3"
    assert sorted(p.name for p in tmp_path.iterdir()) == [DEMO_MODEL_NAME]


def test_builds_are_reproducible(tmp_path, model_dir):
    build_demo_model(tmp_path / "again")
    for name in ("model.safetensors", "tokenizer.json", "config.json", "chat_template.jinja"):
        assert (tmp_path / "again" / name).read_bytes() == (model_dir / name).read_bytes(), name
