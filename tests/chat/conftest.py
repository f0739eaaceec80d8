"""Fixtures of the chat tests."""

from __future__ import annotations

import pytest

from chat import services


@pytest.fixture
def chat_session(user, engine, medserver_settings):
    medserver_settings(default_temperature=0.0)  # greedy: the same answer every run
    return services.session_create(owner=user, model_name=engine.state.model)
