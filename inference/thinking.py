"""MedGemma's thinking trace: text between `<unused94>` and `<unused95>`.

The model writes `<unused94>thought\n...reasoning...<unused95>answer`. The
splitter tells trace from answer while text streams in, even when a marker
arrives split across two chunks.
"""

from __future__ import annotations

from collections.abc import Iterator

THOUGHT_START = "<unused94>"
THOUGHT_END = "<unused95>"
_LABEL = "thought\n"


class ThoughtSplitter:
    """Feed streamed text; get ("thinking" | "answer", text) pieces back."""

    def __init__(self) -> None:
        self._pending = ""
        self._in_thought = False
        self._label_seen: str | None = None  # text after <unused94> that may be the label

    def feed(self, text: str) -> Iterator[tuple[str, str]]:
        self._pending += text
        while self._pending:
            marker = THOUGHT_END if self._in_thought else THOUGHT_START
            kind = "thinking" if self._in_thought else "answer"
            index = self._pending.find(marker)
            if index >= 0:
                yield from self._emit(kind, self._pending[:index])
                self._pending = self._pending[index + len(marker) :]
                self._in_thought = not self._in_thought
                self._label_seen = "" if self._in_thought else None
                continue
            # Hold back a tail that could be the start of a marker.
            keep = _partial_marker_length(self._pending, marker)
            ready, self._pending = (
                self._pending[: len(self._pending) - keep],
                self._pending[len(self._pending) - keep :],
            )
            yield from self._emit(kind, ready)
            return

    def flush(self) -> Iterator[tuple[str, str]]:
        """Emit whatever is held back once the stream has ended."""
        kind = "thinking" if self._in_thought else "answer"
        rest, self._pending = self._pending, ""
        if self._label_seen:  # the stream ended inside what looked like the label
            rest, self._label_seen = self._label_seen + rest, None
        yield from self._emit(kind, rest)

    def _emit(self, kind: str, text: str) -> Iterator[tuple[str, str]]:
        if kind == "thinking" and self._label_seen is not None:
            # Drop the "thought\n" label that opens every trace; hold back text
            # while it may still be the label, give it back once it is not.
            seen = self._label_seen + text
            if _LABEL.startswith(seen) and len(seen) < len(_LABEL):
                self._label_seen = seen
                return
            self._label_seen = None
            text = seen[len(_LABEL) :] if seen.startswith(_LABEL) else seen
        if text:
            yield kind, text


def _partial_marker_length(text: str, marker: str) -> int:
    for size in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:size]):
            return size
    return 0


def split_trace(text: str) -> tuple[str, str]:
    """Return (thinking, answer) for a whole generated text."""
    splitter = ThoughtSplitter()
    parts = {"thinking": [], "answer": []}
    for kind, piece in [*splitter.feed(text), *splitter.flush()]:
        parts[kind].append(piece)
    return "".join(parts["thinking"]), "".join(parts["answer"])
