"""Saving an answer as it is written: progress, the finished text, or the failure."""

from __future__ import annotations

from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from chat import generation_settings
from chat.models import Message
from inference.engine import Finished, GenerationRequest

INTERRUPTED = "The server stopped before this answer was finished."


def answer_record_request(answer: Message, request: GenerationRequest) -> None:
    """Record with `answer` the sampling and thinking of the `request` that writes it.

    The placeholder recorded the session's settings when it was saved; they
    differ from the request's only when the settings changed in between, and
    then the request's, which the engine gets, are kept. A continued answer
    keeps what it recorded (its request is built from it).
    """
    if request.continue_answer:
        return
    recorded = generation_settings.recorded_sampling(request.sampling, thinking=request.thinking)
    if answer.sampling != recorded:
        Message.objects.filter(pk=answer.pk).update(sampling=recorded)
        answer.sampling = recorded


def answer_save_progress(
    message_id: int, *, content: str, thinking: str, thinking_ms: int | None = None
) -> None:
    """Keep the text streamed so far, so a crash loses at most a moment of it."""
    Message.objects.filter(pk=message_id, status=Message.Status.STREAMING).update(
        content=content, thinking=thinking, thinking_ms=thinking_ms
    )


LOOP_NOTE = "Stopped automatically: the answer kept repeating itself."


def answer_finish(
    message_id: int,
    *,
    content: str,
    thinking: str,
    finished: Finished,
    engine: str,
    quantization: str = "",
    thinking_ms: int | None = None,
) -> None:
    """Save a finished answer: complete, or stopped when it was cancelled.

    `engine` and `quantization` are what wrote it (they can change between
    answers: a fallback, -q). `thinking_ms` is how long the model thought
    before it began to answer.
    An answer the loop guard cut off is kept as stopped, with the reason.
    A continued answer (chat.services.answer_continue) adds this part's tokens
    and time to those of the part before; its first token time stays the first.
    """
    status = (
        Message.Status.STOPPED
        if finished.reason in ("cancelled", "repetition")
        else Message.Status.COMPLETE
    )
    note = LOOP_NOTE if finished.reason == "repetition" else ""
    Message.objects.filter(pk=message_id).update(
        content=content,
        thinking=thinking,
        thinking_ms=thinking_ms,
        status=status,
        error=note,
        finish_reason=finished.reason,
        engine=engine,
        quantization=quantization,
        prompt_tokens=Coalesce(F("prompt_tokens"), finished.prompt_tokens),
        completion_tokens=Coalesce(F("completion_tokens"), 0) + finished.completion_tokens,
        first_token_ms=Coalesce(F("first_token_ms"), _ms(finished.first_token_seconds)),
        duration_ms=Coalesce(F("duration_ms"), 0) + (_ms(finished.total_seconds) or 0),
        completed_at=timezone.now(),
    )


def answer_fail(
    message_id: int, *, content: str, thinking: str, error: str, thinking_ms: int | None = None
) -> None:
    """Save a failed answer with what it had written and why it stopped."""
    Message.objects.filter(pk=message_id).update(
        content=content,
        thinking=thinking,
        thinking_ms=thinking_ms,
        status=Message.Status.ERROR,
        error=error,
        completed_at=timezone.now(),
    )


def answers_mark_interrupted() -> int:
    """At start-up: answers left streaming by a previous run did not finish; say so."""
    return Message.objects.filter(status=Message.Status.STREAMING).update(
        status=Message.Status.ERROR, error=INTERRUPTED, completed_at=timezone.now()
    )


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)
