"""Answers: the use cases that start one (ask), the request the engine gets
(prompt), and the answers being written now (live)."""

from chat.answers.ask import ask, continue_answer, edit, regenerate
from chat.answers.live import (
    LiveText,
    begin_answer,
    is_running,
    live_answers,
    session_group,
    stop_answers,
)
from chat.answers.prompt import request_for

__all__ = [
    "LiveText",
    "ask",
    "begin_answer",
    "continue_answer",
    "edit",
    "is_running",
    "live_answers",
    "regenerate",
    "request_for",
    "session_group",
    "stop_answers",
]
