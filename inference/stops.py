"""Stop sequences: end an answer where the caller said, without showing the marker."""

from __future__ import annotations


class StopScanner:
    """Feed answer text as it streams; get back the text that is safe to show.

    Text that could be the start of a stop sequence is held back until the
    next piece shows whether it is. Once a stop sequence appears, `stopped`
    is True and nothing after it is ever returned.
    """

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = tuple(s for s in stops if s)
        self.stopped = False
        self._held = ""

    def feed(self, text: str) -> str:
        if self.stopped:
            return ""
        text = self._held + text
        cut = min((i for i in (text.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self._held = ""
            return text[:cut]
        keep = max((_overlap(text, s) for s in self.stops), default=0)
        self._held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep]

    def flush(self) -> str:
        """The held-back text, once the answer has ended without a stop sequence."""
        held, self._held = ("" if self.stopped else self._held), ""
        return held


def _overlap(text: str, stop: str) -> int:
    """Length of the longest end of `text` that is a beginning of `stop`."""
    for size in range(min(len(stop) - 1, len(text)), 0, -1):
        if text.endswith(stop[:size]):
            return size
    return 0


class LoopGuard:
    """Notices an answer stuck repeating itself, as small models sometimes do.

    The answer has looped when its last stretch is one block of text (1 to
    200 characters) repeated `repeats` times in a row, over at least
    MIN_LOOP_CHARS characters. `repeats` 0 turns the guard off.
    """

    MAX_BLOCK = 200
    MIN_LOOP_CHARS = 200
    CHECK_EVERY = 32  # characters of new text between two checks

    def __init__(self, repeats: int) -> None:
        self.repeats = repeats
        self.looping = False
        self._text = ""
        self._unchecked = 0

    def feed(self, text: str) -> bool:
        """Add streamed text; return True once the answer is looping."""
        if self.repeats <= 0 or self.looping:
            return self.looping
        self._text = (self._text + text)[-(self.MAX_BLOCK * max(self.repeats, 2) * 2) :]
        self._unchecked += len(text)
        if self._unchecked >= self.CHECK_EVERY:
            self._unchecked = 0
            self.looping = self._looping()
        return self.looping

    def _looping(self) -> bool:
        text = self._text
        for block in range(1, self.MAX_BLOCK + 1):
            span = max(block * self.repeats, self.MIN_LOOP_CHARS)
            if span + block > len(text):
                break
            # A tail that equals itself shifted by one block is that block repeated.
            if text[-span:] == text[-span - block : -block]:
                return True
        return False
