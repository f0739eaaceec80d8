"""The chat WebSocket: takes messages from the page, streams answers back as HTML.

The page's composer sends JSON over htmx's ws extension; every frame sent
back is HTML that htmx swaps in by id (out-of-band), rendered from the same
partials as the page itself.
"""

from __future__ import annotations

import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from chat import answers, limits, selectors, services, stream_html
from chat.errors import LimitExceeded, MessageRejected
from chat.models import ChatSession, Message
from inference.worker import engine_worker

log = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404


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
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        # Answers in progress go on and are saved; a reopened page picks them up.
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        if not isinstance(content, dict):
            await self._alert("That request was not understood.")
            return
        action = content.get("action", "send")
        if action == "send":
            await self._send_message(content)
        elif action == "stop":
            answers.stop_answers(self.session.pk, self.scope["user"])
        else:
            await self._alert("That request was not understood.")

    async def decode_json(self, text_data):
        try:
            return await super().decode_json(text_data)
        except ValueError:
            return None

    async def _send_message(self, content: dict) -> None:
        text = content.get("content", "")
        attachment_ids = content.get("attachments") or []
        if isinstance(attachment_ids, str):
            attachment_ids = [attachment_ids]
        if not isinstance(text, str) or not isinstance(attachment_ids, list):
            await self._alert("That request was not understood.")
            return
        user = self.scope["user"]
        try:
            slot = limits.reserve_stream(user)
        except LimitExceeded as error:
            await self._alert(str(error))
            return
        try:
            question, answer = await database_sync_to_async(services.message_send)(
                session=self.session,
                content=text,
                attachment_ids=attachment_ids,
                model_name=engine_worker().state.model,
            )
        except MessageRejected as error:
            limits.release_stream(slot)
            await self._alert(str(error))
            return
        except Exception:
            limits.release_stream(slot)
            raise
        html = await database_sync_to_async(stream_html.messages_added)(question, answer)
        await self.send(text_data=stream_html.composer_sent())
        await self.channel_layer.group_send(self.group, {"type": "chat.html", "html": html})
        answers.start_answer(answer, slot)

    async def _alert(self, message: str) -> None:
        await self.send(text_data=stream_html.composer_alert(message))

    # --- group events (sent by chat.answers and by other pages of the session)

    async def chat_html(self, event: dict) -> None:
        await self.send(text_data=event["html"])

    async def answer_delta(self, event: dict) -> None:
        await self.send(text_data=stream_html.answer_delta(event))

    async def answer_done(self, event: dict) -> None:
        try:
            message = await database_sync_to_async(Message.objects.get)(
                pk=event["message_id"], session=self.session
            )
        except Message.DoesNotExist:
            return  # deleted meanwhile
        html = await database_sync_to_async(stream_html.message_final)(message)
        await self.send(text_data=html)
