"""Creating and revoking API tokens in the page."""

from __future__ import annotations

import re

import pytest

from api import tokens as api_tokens
from api.models import ApiToken

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def test_a_created_token_is_shown_once_and_works(signed_in, client, user, engine):
    page = signed_in.post("/account/api-tokens/", {"name": "PACS viewer"}, HTTP_HX_REQUEST="true")
    key = re.search(r'<code class="token-value">(ms_[\w-]+)</code>', page.content.decode())[1]
    token = ApiToken.objects.get(owner=user)
    assert token.name == "PACS viewer" and key.startswith(token.prefix)
    assert key not in signed_in.get("/account/api-tokens/").content.decode()
    client.logout()
    assert client.get("/api/models", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200


def test_revoking_a_token_stops_it(signed_in, client, user, engine):
    token, key = api_tokens.api_token_create(owner=user, name="script")
    row = signed_in.post(f"/account/api-tokens/{token.pk}/revoke/", HTTP_HX_REQUEST="true")
    assert 'data-token-active="false"' in row.content.decode()
    client.logout()
    assert client.get("/api/models", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 401


def test_nobody_sees_or_revokes_another_users_tokens(signed_in, other_user):
    token, _ = api_tokens.api_token_create(owner=other_user, name="theirs")
    assert "theirs" not in signed_in.get("/account/api-tokens/").content.decode()
    assert signed_in.post(f"/account/api-tokens/{token.pk}/revoke/").status_code == 404
    assert ApiToken.objects.get(pk=token.pk).is_active


def test_the_token_page_needs_a_login(client):
    response = client.get("/account/api-tokens/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
