"""The conversation as chat-template messages: images, their labels, the text."""

from __future__ import annotations

import pytest
from PIL import Image
from transformers import AutoProcessor

from inference.demo_model import DEMO_MODEL_NAME, ensure_demo_model
from inference.engine import ChatTurn, GenerationRequest
from inference.prompting import build_messages
from inference.registry import MODELS


def _numbered(source, number: int) -> dict:
    return {"type": "image", "n": number}


def test_each_label_follows_its_image_as_text():
    turn = ChatTurn("user", "Findings?", (b"a", b"b"), ("CT slice 1 of 2", "CT slice 2 of 2"))

    (message,) = build_messages(GenerationRequest(turns=(turn,)), MODELS["4"], _numbered)

    assert message["content"] == [
        {"type": "image", "n": 1},
        {"type": "text", "text": "CT slice 1 of 2"},
        {"type": "image", "n": 2},
        {"type": "text", "text": "CT slice 2 of 2\n\nFindings?"},
    ]


def test_images_without_labels_are_sent_as_before():
    turns = (
        ChatTurn("user", "Describe", (b"a",)),
        ChatTurn("assistant", "A film."),
        ChatTurn("user", "Compare", (b"b", b"c"), ("", "CT slice 3 of 9")),
    )

    first, _, last = build_messages(GenerationRequest(turns=turns), MODELS["4"], _numbered)

    assert first["content"] == [{"type": "image", "n": 1}, {"type": "text", "text": "Describe"}]
    assert last["content"] == [
        {"type": "image", "n": 1},
        {"type": "image", "n": 2},
        {"type": "text", "text": "CT slice 3 of 9\n\nCompare"},
    ]


@pytest.fixture(scope="module")
def processor(tmp_path_factory):
    return AutoProcessor.from_pretrained(
        ensure_demo_model(tmp_path_factory.mktemp("models") / DEMO_MODEL_NAME)
    )


def test_the_chat_template_puts_the_label_right_after_the_image(processor):
    image = Image.new("RGB", (32, 32), (90, 90, 90))
    turn = ChatTurn("user", "Findings?", (image,), ("CT slice 12 of 120 (lung window)",))
    messages = build_messages(
        GenerationRequest(turns=(turn,)), MODELS["demo"], lambda s, n: {"type": "image", "image": s}
    )

    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    # The processor expands <start_of_image> into the image's tokens.
    assert "<start_of_image>CT slice 12 of 120 (lung window)\n\nFindings?<end_of_turn>" in prompt


SYSTEM = "You are a radiologist. Answer in French."


def _rendered(processor, thinking: bool, system: str | None) -> str:
    turns = ((ChatTurn("system", system),) if system else ()) + (ChatTurn("user", "Findings?"),)
    messages = build_messages(
        GenerationRequest(turns=turns, thinking=thinking), MODELS["demo"], lambda s, n: {}
    )
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def test_thinking_keeps_the_system_prompt_in_googles_one_text_form(processor):
    prompt = _rendered(processor, thinking=True, system=SYSTEM)

    assert f"<start_of_turn>user\nSYSTEM INSTRUCTION: think silently if needed. {SYSTEM}\n\n" in (
        prompt
    )
    assert prompt.rstrip().endswith("Findings?<end_of_turn>\n<start_of_turn>model")


@pytest.mark.parametrize("thinking", [False, True])
def test_a_system_prompt_adds_the_same_tokens_with_thinking_on_or_off(processor, thinking):
    def tokens(system):
        return len(processor.tokenizer(_rendered(processor, thinking, system))["input_ids"])

    long_system = SYSTEM + " Report lung nodules by size and lobe." * 30
    added_on = tokens(long_system) - tokens(None)
    added_off = len(processor.tokenizer(_rendered(processor, False, long_system))["input_ids"]) - (
        len(processor.tokenizer(_rendered(processor, False, None))["input_ids"])
    )
    assert added_on > 200
    assert abs(added_on - added_off) <= 1  # a merge across the joining space at most
