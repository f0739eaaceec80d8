"""Reading a streamed API answer (Server-Sent Events) from Django's async test client."""

from __future__ import annotations

import json


async def read_events(response) -> list:
    """The data of each Server-Sent Event: parsed JSON, or the text [DONE]."""
    body = b"".join([chunk async for chunk in response.streaming_content]).decode()
    frames = [line[len("data: ") :] for line in body.split("\n") if line.startswith("data: ")]
    return [frame if frame == "[DONE]" else json.loads(frame) for frame in frames]
