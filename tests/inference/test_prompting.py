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
