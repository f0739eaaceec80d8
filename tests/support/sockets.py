"""The chat socket as a test drives it: open it as a signed-in page would, read the
frames of an answer, and what a page that applied them shows."""

from __future__ import annotations

import asyncio
import html
import re

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.utils.html import strip_tags

from chat.models import ChatSession, Message
from medserver_site.asgi import application

# Blocks of an answer that closed are appended rendered; the open block is replaced.
DELTA = re.compile(
    r'<div id="answer-(\d+)-(closed|tail)" hx-swap-oob="(?:beforeend|innerHTML)">(.*?)</div>', re.S
)
# The finished answer replaces its streaming version: an article swapped out-of-band.
FINAL = re.compile(
    r'<article class="message" id="message-(\d+)"[^>]*data-status="(\w+)" hx-swap-oob="true"'
)


def signed_in_session(user, **data) -> str:
    """Return the key of a session signed in as `user`, as the login page leaves
    it (with `data` added to the session)."""
    store = SessionStore()
    store.update(data)
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.save()
    return store.session_key


async def socket_headers(user, origin: bytes = b"http://localhost", **session) -> list:
    """The headers a browser page signed in as `user` opens the socket with."""
    headers = [(b"origin", origin), (b"host", b"localhost")]
    if user.is_authenticated:
        key = await database_sync_to_async(signed_in_session)(user, **session)
        headers.append((b"cookie", f"sessionid={key}".encode()))
    return headers


async def open_socket(
    session: ChatSession, user, origin: bytes = b"http://localhost", query: str = ""
):
    """Open the session's socket as `user` (a signed-in session's cookie); return
    (communicator, connected, close code)."""
    communicator = WebsocketCommunicator(application, f"/ws/chat/{session.pk}/{query}")
    # The app checks Origin as a browser would send it.
    communicator.scope["headers"] = await socket_headers(user, origin)
    connected, code = await communicator.connect()
    return communicator, connected, code


async def connect(session: ChatSession, user, query: str = "") -> WebsocketCommunicator:
    communicator, connected, _ = await open_socket(session, user, query=query)
    assert connected
    return communicator


async def read_until_final(communicator, *, timeout: float = 60) -> tuple[list[str], str, str]:
    """Collect frames until an answer's final swap; return (frames, message id, status)."""
    frames = []
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = deadline - asyncio.get_running_loop().time()
        frame = await communicator.receive_from(timeout=max(left, 0.1))
        frames.append(frame)
        final = FINAL.search(frame)
        if final:
            return frames, final.group(1), final.group(2)


def streamed_html(frames: list[str]) -> str:
    """The answer's HTML as a page that applied every delta frame shows it."""
    closed, tail = "", ""
    for frame in frames:
        for match in DELTA.finditer(frame):
            if match.group(2) == "closed":
                closed += match.group(3)
            else:
                tail = match.group(3)
    return closed + tail


def visible_text(markup: str) -> str:
    """The words a reader sees in some HTML, whitespace folded."""
    return " ".join(html.unescape(strip_tags(markup)).split())


def streamed_text(frames: list[str]) -> str:
    return visible_text(streamed_html(frames))


@database_sync_to_async
def messages_of(session: ChatSession) -> list[Message]:
    return list(session.messages.order_by("id"))
