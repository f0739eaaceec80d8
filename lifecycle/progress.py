"""Progress of a long backup or restore, on a terminal only (cron's mail stays clean)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """A one-line counter of files and bytes, redrawn at most a few times a second."""

    def __init__(self, verb: str, *, total_bytes: int, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.shown = self.stream.isatty()
        self.verb = verb
        self.total = max(total_bytes, 1)
        self.done = 0
        self.files = 0
        self._drawn_at = 0.0

    def advance(self, size: int) -> None:
        self.done += size
        self.files += 1
        now = time.monotonic()
        if self.shown and now - self._drawn_at > 0.2:
            self._drawn_at = now
            self._draw()

    def finish(self) -> None:
        if self.shown:
            self.done = max(self.done, self.total)
            self._draw()
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self) -> None:
        percent = min(100, self.done * 100 // self.total)
        self.stream.write(
            f"\r{self.verb}: {percent:3d}%  {self.files:,} files, {_size(self.done)} "
            f"of {_size(self.total)}"
        )
        self.stream.flush()


def _size(count: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1024
    return f"{count} B"
