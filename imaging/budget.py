"""How many images one message can carry: what the model's context holds and what the server allows.

The site builds one `ImageBudget` from its configuration and hands it to the
DICOM and document paths, which size a series or a PDF by it and say, in plain
words, what limited them.
"""

from __future__ import annotations

from dataclasses import dataclass

# Prompt room kept for the question, the instructions, the chat template and
# the slice labels when working out how many images fit.
TEXT_ALLOWANCE_TOKENS = 512


@dataclass(frozen=True)
class ImageBudget:
    """The model's context (`context_tokens`), the tokens one image takes
    (`image_tokens`) and the most images a message may carry (`max_images`)."""

    context_tokens: int
    image_tokens: int
    max_images: int

    def images_that_fit(self, answer_tokens: int) -> int:
        """How many images one message can show the model: the context, less room
        for the answer (`answer_tokens`, at most half the context) and
        TEXT_ALLOWANCE_TOKENS, in images of `image_tokens` each."""
        answer = min(answer_tokens, self.context_tokens // 2)
        room = self.context_tokens - answer - TEXT_ALLOWANCE_TOKENS
        return max(0, room // self.image_tokens)

    def room(self, answer_tokens: int, other_images: int) -> int:
        """How many more images fit beside `other_images` (may be 0 or less)."""
        return min(self.images_that_fit(answer_tokens), self.max_images) - other_images

    def what_limits(self, answer_tokens: int) -> str:
        """Say what bounds a message's images, to finish "the most that …"."""
        if self.images_that_fit(answer_tokens) < self.max_images:
            return (
                f"fit in the model's {self.context_tokens:,}-token context with room for the answer"
            )
        return f"one message may carry, with its other images (at most {self.max_images})"

    def no_room(self, answer_tokens: int) -> str:
        """Say why no image fits in a message."""
        if self.images_that_fit(answer_tokens) <= 0:
            return (
                f"No image fits in the model's {self.context_tokens:,}-token context once room "
                "is kept for the answer; lower Max tokens or serve a longer context."
            )
        return f"This message already carries the most images it may ({self.max_images})."
