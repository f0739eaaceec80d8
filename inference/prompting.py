"""A request as chat-template messages: the same conversation for every engine."""

from __future__ import annotations

from collections.abc import Callable

from inference.engine import EngineError, GenerationRequest, ImageSource
from inference.registry import ModelSpec

# MedGemma 27B thinks aloud when its system prompt starts with this line
# (Google's model card); the trace comes back between <unused94>/<unused95>.
THINKING_INSTRUCTION = "SYSTEM INSTRUCTION: think silently if needed."


def build_messages(
    request: GenerationRequest,
    spec: ModelSpec,
    image_part: Callable[[ImageSource, int], dict],
) -> list[dict]:
    """Return the conversation as messages with content parts, images first.

    A system message's content is one plain string: every chat template and
    OpenAI-compatible server reads that whole (Gemma 3's template keeps only
    the first part of a list).

    `image_part(source, number)` renders one image the way the engine takes
    it. An image's label follows it as a text part, as Google's MedGemma CT
    notebook follows each slice with "SLICE n". Raise EngineError for images
    sent to a text-only model, or for `continue_answer` without an assistant
    turn last (the engines leave that turn open: see `generation_prompt`).
    """
    if request.continue_answer and (not request.turns or request.turns[-1].role != "assistant"):
        raise EngineError("There is no unfinished answer to continue.")
    if not spec.multimodal and any(turn.images for turn in request.turns):
        raise EngineError(
            f"{spec.label} reads text only; remove the images or serve a "
            "multimodal model (-m 4 or -m 27)."
        )
    messages = []
    for turn in request.turns:
        if turn.role == "system":
            messages.append({"role": "system", "content": turn.text})
            continue
        content = []
        for n, source in enumerate(turn.images, start=1):
            content.append(image_part(source, n))
            label = turn.image_labels[n - 1] if n <= len(turn.image_labels) else ""
            if label:
                content.append({"type": "text", "text": label})
        if content and content[-1]["type"] == "text":
            # Chat templates trim and join text parts: keep the question apart from the label.
            content[-1] = {"type": "text", "text": f"{content[-1]['text']}\n\n{turn.text}"}
        else:
            content.append({"type": "text", "text": turn.text})
        messages.append({"role": turn.role, "content": content})
    if request.thinking and spec.can_think:
        messages = _with_thinking_instruction(messages)
    return messages


def _with_thinking_instruction(messages: list[dict]) -> list[dict]:
    """Google's form: the instruction and the system text as ONE text.

    Gemma 3's chat template reads only the first part of a system message's
    content, so the instruction and the clinician's system prompt (or preset)
    must not be two parts: the second would silently vanish.
    """
    if messages and messages[0]["role"] == "system":
        system = f"{THINKING_INSTRUCTION} {messages[0]['content']}"
        return [{"role": "system", "content": system}, *messages[1:]]
    return [{"role": "system", "content": THINKING_INSTRUCTION}, *messages]


def generation_prompt(request: GenerationRequest) -> dict[str, bool]:
    """How the chat template ends the prompt: a new model turn, or (to continue
    an unfinished answer) the last assistant turn left open, without end-of-turn.

    The keywords of transformers' apply_chat_template, which vLLM's and SGLang's
    OpenAI-compatible servers take as request fields too.
    """
    if request.continue_answer:
        return {"add_generation_prompt": False, "continue_final_message": True}
    return {"add_generation_prompt": True}
