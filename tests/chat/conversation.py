"""Conversations saved for tests as the app saves them: a question, then its answer
finished with the words the engine would have written."""

from __future__ import annotations

from chat import services
from chat.models import ChatSession, Message
from inference.engine import Finished


def finish_answer(
    answer: Message, content: str = "Answer.", *, thinking: str = "", reason: str = "stop", **fields
) -> Message:
    """Save `answer` (a streaming placeholder) as finished: 50 prompt tokens, 20 written,
    first after 0.25 s, done after 1.5 s. `fields` go to services.answer_finish."""
    services.answer_finish(
        answer.pk,
        content=content,
        thinking=thinking,
        finished=Finished(reason, 50, 20, 0.25, 1.5),
        engine=fields.pop("engine", "transformers"),
        **fields,
    )
    answer.refresh_from_db()
    return answer


def exchange(
    session: ChatSession, question: str = "Q", answer: str = "A", **finish
) -> tuple[Message, Message]:
    """Send `question` in `session` and finish its answer; return both, as saved."""
    asked, answered = services.message_send(session=session, content=question)
    return asked, finish_answer(answered, answer, **finish)
