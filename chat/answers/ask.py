"""The use cases that start an answer: ask, edit, regenerate, continue.

The chat socket (chat.consumers) and the page's form post (chat.views.messages)
call these, so an answer is saved, submitted and shown the same way from
either. Each saves its messages through a service, and the answer is written
in the background by chat.answers.live. Each returns the HTML that shows every
page of the chat the change; each raises LimitExceeded or Rejected with
nothing saved or started.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from audit import trail
from chat import services, stream_html
from chat.answers.live import begin_answer
from chat.models import ChatSession, Message
from chat.serving import engine_worker


async def ask(user, session: ChatSession, *, text: str, attachment_ids: Sequence[str]) -> str:
    """Send a question (with the images already uploaded) and write its answer."""

    def save() -> tuple[Message, Callable[[], str]]:
        question, answer = services.message_send(
            session=session,
            content=text,
            attachment_ids=attachment_ids,
            model_name=engine_worker().state.model,
        )
        return answer, lambda: stream_html.messages_added(question, answer)

    return await begin_answer(user, session.pk, save)


async def edit(
    user, session: ChatSession, *, question: Message, text: str, address: str | None
) -> str:
    """Save an edited question as a new version and write its answer (audited)."""

    def save() -> tuple[Message, Callable[[], str]]:
        _, answer = services.message_edit(
            message=question, content=text, model_name=engine_worker().state.model
        )
        trail.record(trail.Action.MESSAGE_EDIT, user=user, target=question, address=address)
        return answer, lambda: stream_html.conversation(session)

    return await begin_answer(user, session.pk, save)


async def regenerate(user, session: ChatSession, *, answer: Message) -> str:
    """Write a new version of `answer`."""

    def save() -> tuple[Message, Callable[[], str]]:
        new = services.answer_regenerate(answer=answer, model_name=engine_worker().state.model)
        return new, lambda: stream_html.conversation(session)

    return await begin_answer(user, session.pk, save)


async def continue_answer(user, session: ChatSession, *, answer: Message) -> str:
    """Write on an answer cut off at its token budget, from where it stopped."""

    def save() -> tuple[Message, Callable[[], str]]:
        same = services.answer_continue(answer=answer)
        return same, lambda: stream_html.message_streaming(same)

    return await begin_answer(user, session.pk, save)
