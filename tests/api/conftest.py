from __future__ import annotations

import pytest
from django.core.cache import cache

from api import tokens as api_tokens


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Each test starts with an unspent rate budget."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api_key(user) -> str:
    return api_tokens.api_token_create(owner=user, name="tests")[1]


@pytest.fixture
def api(client, api_key, engine, medserver_settings):
    """Django's test client, sending the user's API token with every request."""
    medserver_settings(default_temperature=0.0)

    class Api:
        def get(self, path, **extra):
            return client.get(path, HTTP_AUTHORIZATION=f"Bearer {api_key}", **extra)

        def post(self, path, data=None, content_type="application/json", **extra):
            return client.post(
                path,
                data,
                content_type=content_type,
                HTTP_AUTHORIZATION=f"Bearer {api_key}",
                **extra,
            )

    return Api()


@pytest.fixture
def async_api(async_client, api_key, engine, medserver_settings):
    """The async test client with the user's token: for streamed answers.

    A stream is read on the loop that asked for it, as on the real server;
    such tests need `django_db(transaction=True)`, since the token is checked
    on another thread.
    """
    medserver_settings(default_temperature=0.0)
    headers = {"Authorization": f"Bearer {api_key}"}

    class AsyncApi:
        async def post(self, path, data):
            return await async_client.post(
                path, data, content_type="application/json", headers=headers
            )

    return AsyncApi()
