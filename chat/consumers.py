"""The chat WebSocket: takes messages from the page, streams answers back as HTML.

The page's composer and message actions send JSON over htmx's ws extension;
every frame sent back is HTML that htmx swaps in by id (out-of-band), rendered
from the same partials as the page itself.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from chat import account_sockets, answers, limits, selectors, services, stream_html
from chat.errors import LimitExceeded, Rejected
from chat.models import ChatSession, Message
from chat.unicode_text import INVALID_TEXT, has_invalid_text

log = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404
SIGNED_OUT = "You are signed out; reload the page to sign in."
# A question sent after the sign-in ended is never dropped: it becomes the draft.
SIGNED_OUT_KEPT = (
    "You were signed out after a while without activity. Your message was not sent: "
    "it is kept, and comes back after you sign in."
)
NOT_UNDERSTOOD = "That request was not understood."
WRITES = ("send", "edit", "regenerate", "continue")
# Message ids are SQLite integers: anything else a frame names is not one.
_MAX_ID = 2**63 - 1


class SignedOut(Exception):
    """The sign-in that opened the socket has ended."""


class ChatConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None
    account_group: str | None = None
    signed_out = False

    async def connect(self) -> None:
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        session = self.scope.get("session")
        self.session_key = getattr(session, "session_key", None)
        session_id = self.scope["url_route"]["kwargs"]["session_id"]
        try:
            self.session = await database_sync_to_async(selectors.session_for)(user, session_id)
        except ChatSession.DoesNotExist:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.group = answers.session_group(self.session.pk)
        # Deltas of an answer up to this number are in the text sent on connect.
        self.seen: dict[int, int] = {}
        await self.channel_layer.group_add(self.group, self.channel_name)
        # Told when the account changes (disabled, new password) or signs out.
        self.account_group = account_sockets.user_group(user.pk)
        await self.channel_layer.group_add(self.account_group, self.channel_name)
        await self.accept()
        await self._catch_up()

    async def _catch_up(self) -> None:
        """Bring a (re)opened page up to date: answers being written arrive with
        their text so far, and a page that shows an older state (the `seen`
        stamp it was rendered with) gets the conversation as it is now."""
        live = answers.live_answers(self.session.pk)
        query = parse_qs(self.scope.get("query_string", b"").decode())
        stamp = query.get("seen", [None])[0]
        if not live and stamp is None:
            return
        html = await database_sync_to_async(_conversation_if_changed)(self.session, live, stamp)
        if html:
            await self.send(text_data=html)
            self.seen = {message_id: text.seq for message_id, text in live.items()}

    async def disconnect(self, code: int) -> None:
        # Answers in progress go on and are saved; a reopened page picks them up.
        for group in (self.group, self.account_group):
            if group:
                await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        if has_invalid_text(content):
            await self._alert(INVALID_TEXT)
            return
        action = content.get("action", "send") if isinstance(content, dict) else None
        try:
            await database_sync_to_async(self._check_frame)(writes=action in WRITES)
        except SignedOut:
            if action == "send":  # never dropped: the composer gets it back after sign-in
                await database_sync_to_async(self._keep_draft)(content)
                await self._sign_out(SIGNED_OUT_KEPT)
            else:
                await self._sign_out()
            return
        except LimitExceeded as error:
            await self._alert(str(error))
            return
        if action == "send":
            await self._send_message(content)
        elif action == "edit":
            await self._edit(content)
        elif action == "regenerate":
            await self._regenerate(content)
        elif action == "continue":
            await self._continue(content)
        elif action == "stop":
            answers.stop_answers(self.session.pk, self.scope["user"])
        else:
            await self._alert(NOT_UNDERSTOOD)

    def _check_frame(self, *, writes: bool) -> None:
        """Raise SignedOut once the sign-in that opened the socket has ended
        (chat.account_sockets); for `writes`, raise LimitExceeded past the
        generations' budget (--rate-limit, the same as the pages' and the API's;
        every write asks for an answer) and note the message as activity. One
        database hop."""
        user = self.scope["user"]
        if not account_sockets.socket_signed_in(self.session_key, user.pk, activity=writes):
            raise SignedOut
        if writes:
            client = self.scope.get("client") or (None,)
            limits.check_socket_generation_rate(user, client[0])

    async def _sign_out(self, message: str = SIGNED_OUT) -> None:
        """Say so, and close with 4401: the page reloads to the sign-in form."""
        if self.signed_out:
            return
        self.signed_out = True
        # Nothing more of the chat reaches this socket, answers being written included.
        await self.disconnect(CLOSE_UNAUTHENTICATED)
        self.group = self.account_group = None
        await self._alert(message)
        await self.close(code=CLOSE_UNAUTHENTICATED)

    def _keep_draft(self, content: dict) -> None:
        """Keep a question refused after the idle timeout as the chat's draft."""
        text = content.get("content", "")
        attachment_ids = content.get("attachments") or []
        if isinstance(attachment_ids, str):
            attachment_ids = [attachment_ids]
        if isinstance(text, str) and isinstance(attachment_ids, list):
            try:
                services.draft_save(session=self.session, text=text, attachment_ids=attachment_ids)
            except Rejected:
                pass  # far over any limit: the draft saved as it was typed stays

    async def receive(self, text_data=None, bytes_data=None, **kwargs) -> None:
        if self.signed_out:  # frames already on the way when the socket closed
            return
        if text_data is None:  # a binary frame: the page only ever sends JSON text
            try:
                await database_sync_to_async(self._check_frame)(writes=False)
            except SignedOut:
                await self._sign_out()
                return
            await self._alert(NOT_UNDERSTOOD)
            return
        await super().receive(text_data=text_data, **kwargs)

    async def decode_json(self, text_data):
        try:
            return await super().decode_json(text_data)
        except (ValueError, RecursionError):
            return None

    async def _send_message(self, content: dict) -> None:
        text = content.get("content", "")
        attachment_ids = content.get("attachments") or []
        if isinstance(attachment_ids, str):
            attachment_ids = [attachment_ids]
        if not isinstance(text, str) or not isinstance(attachment_ids, list):
            await self._alert(NOT_UNDERSTOOD)
            return
        asking = answers.ask(
            self.scope["user"], self.session, text=text, attachment_ids=attachment_ids
        )
        if await self._run_use_case(asking, alert=self._alert):
            await self.send(text_data=stream_html.composer_sent())

    async def _edit(self, content: dict) -> None:
        message = await self._message(content)
        text = content.get("text")
        if message is None or not isinstance(text, str):
            await self._toast(NOT_UNDERSTOOD)
            return
        address = (self.scope.get("client") or (None,))[0]
        editing = answers.edit(
            self.scope["user"], self.session, question=message, text=text, address=address
        )
        await self._run_use_case(editing, alert=self._toast)

    async def _regenerate(self, content: dict) -> None:
        message = await self._message(content)
        if message is None:
            await self._toast(NOT_UNDERSTOOD)
            return
        regenerating = answers.regenerate(self.scope["user"], self.session, answer=message)
        await self._run_use_case(regenerating, alert=self._toast)

    async def _continue(self, content: dict) -> None:
        message = await self._message(content)
        if message is None:
            await self._toast(NOT_UNDERSTOOD)
            return
        continuing = answers.continue_answer(self.scope["user"], self.session, answer=message)
        await self._run_use_case(continuing, alert=self._toast)

    async def _run_use_case(self, use_case: Awaitable[str], *, alert) -> bool:
        """Run a use case of chat.answers; a refusal is told to this page through
        `alert`. Return whether the answer started."""
        try:
            await use_case
        except (LimitExceeded, Rejected) as error:
            await alert(str(error))
            return False
        return True

    async def _message(self, content: dict) -> Message | None:
        """The session's message named in the frame, or None."""
        message_id = _message_id(content.get("message_id"))
        if message_id is None:
            return None
        try:
            return await database_sync_to_async(selectors.message_for)(self.session, message_id)
        except Message.DoesNotExist:
            return None

    async def _alert(self, message: str) -> None:
        await self.send(text_data=stream_html.composer_alert(message))

    async def _toast(self, message: str) -> None:
        await self.send(text_data=stream_html.toast(message, kind="error"))

    async def dispatch(self, message) -> None:
        """Run the handler of a message or event, without Channels' usual hop to the
        database thread first (to close stale connections): this consumer reaches
        the database only through database_sync_to_async, which does that itself,
        and an answer's frames must not wait behind other pages' database work
        (tests/chat/test_consumer.py: frames reach the page while the database
        thread is busy)."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # --- group events (sent by chat.answers, chat.views and other pages of the session)

    async def account_changed(self, event: dict) -> None:
        """The user was saved or deleted (chat.account_sockets): still signed in?"""
        still = await database_sync_to_async(account_sockets.socket_signed_in)(
            self.session_key, self.scope["user"].pk
        )
        if not still:
            await self._sign_out()

    async def account_signed_out(self, event: dict) -> None:
        if event["session_key"] == self.session_key:
            await self._sign_out()

    async def chat_html(self, event: dict) -> None:
        await self.send(text_data=event["html"])

    async def answer_delta(self, event: dict) -> None:
        if event["seq"] > self.seen.get(event["message_id"], 0):
            await self.send(text_data=event["html"])

    async def answer_done(self, event: dict) -> None:
        self.seen.pop(event["message_id"], None)
        if event["html"]:
            await self.send(text_data=event["html"])


def _message_id(value: object) -> int | None:
    """A message id as a frame may carry it: a whole number, or its digits in a
    string (the page's hx-vals). None for anything else (floats, Infinity,
    1e400, lists, huge numbers)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= _MAX_ID:
        return value
    return None


def _conversation_if_changed(session: ChatSession, live: dict, stamp: str | None) -> str | None:
    """The conversation, when answers are being written or the page's stamp is stale."""
    if not live and stamp == selectors.conversation_stamp(selectors.active_path(session)):
        return None
    return stream_html.conversation(session, live)
