"""The chat WebSocket: takes messages from the page, streams answers back as HTML.

The page's composer and message actions send JSON over htmx's ws extension;
every frame sent back is HTML that htmx swaps in by id (out-of-band), rendered
from the same partials as the page itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from chat import answers, audit, limits, selectors, services, stream_html
from chat.errors import LimitExceeded, MessageRejected
from chat.models import ChatSession, Message
from inference.worker import engine_worker
from medserver_site.middleware import session_still_active

log = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404
SIGNED_OUT = (
    "You were signed out after a while without activity. Your message was not sent: "
    "it is kept, and comes back after you sign in."
)
NOT_UNDERSTOOD = "That request was not understood."


class SignedOut(Exception):
    """The page's session ended after a while without activity."""


class ChatConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None

    async def connect(self) -> None:
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
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
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        action = content.get("action", "send") if isinstance(content, dict) else None
        if action in ("send", "edit", "regenerate", "continue"):
            try:
                await database_sync_to_async(self._check_may_write)()
            except SignedOut:
                if action == "send":  # never dropped: the composer gets it back after sign-in
                    await database_sync_to_async(self._keep_draft)(content)
                await self._alert(SIGNED_OUT)
                await self.close(code=CLOSE_UNAUTHENTICATED)
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

    def _check_may_write(self) -> None:
        """Raise SignedOut after the idle timeout, LimitExceeded past the
        --rate-limit budget (the same as the pages' and the API's); else note the
        message as activity. Every action that reaches here asks for an answer.
        One database hop."""
        session = self.scope.get("session")
        if session is not None and not session_still_active(session):
            raise SignedOut
        client = self.scope.get("client") or (None,)
        limits.check_socket_generation_rate(self.scope["user"], client[0])

    def _keep_draft(self, content: dict) -> None:
        """Keep a question refused after the idle timeout as the chat's draft."""
        text = content.get("content", "")
        attachment_ids = content.get("attachments") or []
        if isinstance(attachment_ids, str):
            attachment_ids = [attachment_ids]
        if isinstance(text, str) and isinstance(attachment_ids, list):
            try:
                services.draft_save(session=self.session, text=text, attachment_ids=attachment_ids)
            except MessageRejected:
                pass  # far over any limit: the draft saved as it was typed stays

    async def receive(self, text_data=None, bytes_data=None, **kwargs) -> None:
        if text_data is None:  # a binary frame: the page only ever sends JSON text
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

        def send() -> tuple[Message, Callable[[], str]]:
            question, answer = services.message_send(
                session=self.session,
                content=text,
                attachment_ids=attachment_ids,
                model_name=engine_worker().state.model,
            )
            return answer, lambda: stream_html.messages_added(question, answer)

        if await self._start_answer(send, alert=self._alert):
            await self.send(text_data=stream_html.composer_sent())

    async def _edit(self, content: dict) -> None:
        message = await self._message(content)
        text = content.get("text")
        if message is None or not isinstance(text, str):
            await self._toast(NOT_UNDERSTOOD)
            return

        def edit() -> tuple[Message, Callable[[], str]]:
            _, answer = services.message_edit(
                message=message, content=text, model_name=engine_worker().state.model
            )
            audit.record(
                audit.Action.MESSAGE_EDIT,
                user=self.scope["user"],
                target=message,
                address=(self.scope.get("client") or (None,))[0],
            )
            return answer, lambda: stream_html.conversation(self.session)

        await self._start_answer(edit, alert=self._toast)

    async def _regenerate(self, content: dict) -> None:
        message = await self._message(content)
        if message is None:
            await self._toast(NOT_UNDERSTOOD)
            return

        def regenerate() -> tuple[Message, Callable[[], str]]:
            answer = services.answer_regenerate(
                answer=message, model_name=engine_worker().state.model
            )
            return answer, lambda: stream_html.conversation(self.session)

        await self._start_answer(regenerate, alert=self._toast)

    async def _continue(self, content: dict) -> None:
        message = await self._message(content)
        if message is None:
            await self._toast(NOT_UNDERSTOOD)
            return

        def go_on() -> tuple[Message, Callable[[], str]]:
            answer = services.answer_continue(answer=message)
            return answer, lambda: stream_html.message_streaming(answer)

        await self._start_answer(go_on, alert=self._toast)

    async def _start_answer(self, save, *, alert) -> bool:
        """Start an answer (see chat.answers.begin_answer); a refusal is told to
        this page through `alert`. Return whether it started."""
        try:
            await answers.begin_answer(self.scope["user"], self.session.pk, save)
        except (LimitExceeded, MessageRejected) as error:
            await alert(str(error))
            return False
        return True

    async def _message(self, content: dict) -> Message | None:
        """The session's message named in the frame, or None."""
        try:
            message_id = int(content.get("message_id"))
            return await database_sync_to_async(selectors.message_for)(self.session, message_id)
        except (TypeError, ValueError, Message.DoesNotExist):
            return None

    async def _alert(self, message: str) -> None:
        await self.send(text_data=stream_html.composer_alert(message))

    async def _toast(self, message: str) -> None:
        await self.send(text_data=stream_html.toast(message, kind="error"))

    async def dispatch(self, message) -> None:
        """Run the handler of a message or event, without Channels' usual hop to the
        database thread first (to close stale connections): this consumer reaches
        the database only through database_sync_to_async, which does that itself,
        and an answer's frames must not wait behind other pages' database work."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # --- group events (sent by chat.answers, chat.views and other pages of the session)

    async def chat_html(self, event: dict) -> None:
        await self.send(text_data=event["html"])

    async def answer_delta(self, event: dict) -> None:
        if event["seq"] > self.seen.get(event["message_id"], 0):
            await self.send(text_data=event["html"])

    async def answer_done(self, event: dict) -> None:
        self.seen.pop(event["message_id"], None)
        if event["html"]:
            await self.send(text_data=event["html"])


def _conversation_if_changed(session: ChatSession, live: dict, stamp: str | None) -> str | None:
    """The conversation, when answers are being written or the page's stamp is stale."""
    if not live and stamp == selectors.conversation_stamp(selectors.active_path(session)):
        return None
    return stream_html.conversation(session, live)
