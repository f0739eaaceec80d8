"""The one place an answer's engine request is built, from the saved conversation."""

from __future__ import annotations

from chat import generation_settings, selectors
from chat.models import ChatSession, Message
from inference.engine import ChatTurn, GenerationRequest


def request_for(answer: Message) -> GenerationRequest:
    """The engine request that writes `answer` (a saved streaming placeholder):
    the conversation before it, the session's instructions as the system turn,
    and the session's sampling and thinking as they are now; for an answer
    being continued, the sampling it recorded."""
    # Read afresh: the settings may have changed since the page's socket loaded it.
    session = ChatSession.objects.select_related("preset").get(pk=answer.session_id)
    turns = selectors.conversation_before(answer)
    if system_prompt := generation_settings.system_prompt_for(session):
        turns = (ChatTurn("system", system_prompt), *turns)
    # An answer that has text before it starts is one cut off and continued
    # (chat.services.answer_continue): the model goes on from its last word,
    # past its thinking, with the same settings it was written with.
    if answer.content:
        return GenerationRequest(
            turns=(*turns, ChatTurn("assistant", answer.content)),
            sampling=generation_settings.sampling_recorded(answer.sampling, session),
            thinking=False,
            continue_answer=True,
        )
    return GenerationRequest(
        turns=turns,
        sampling=generation_settings.sampling_for(session),
        thinking=generation_settings.thinking_for(session),
    )
