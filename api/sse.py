"""Server-Sent Events responses for streamed answers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

from django.http import StreamingHttpResponse


def sse_frame(payload: dict | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n"


class EventStreamResponse(StreamingHttpResponse):
    """A text/event-stream response that runs `on_close` however the stream ends.

    Closing happens even when the client leaves before the first frame, so
    whatever the stream held (an engine slot) is always given back.
    """

    def __init__(self, frames: AsyncIterator[str], on_close: Callable[[], None]) -> None:
        super().__init__(frames, content_type="text/event-stream; charset=utf-8")
        self["Cache-Control"] = "no-cache"
        self["X-Accel-Buffering"] = "no"  # reverse proxies: pass each token on at once
        self._on_close = on_close

    def close(self) -> None:
        self._on_close()
        super().close()
