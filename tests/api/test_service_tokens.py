"""Service tokens: a front end many clinicians share gets its own limits, and the
clinician it names reaches the audit trail and the answer's provenance."""

from __future__ import annotations

import re

import pytest
from django.core.management import CommandError, call_command

from api import tokens as api_tokens
from api.models import ApiToken
from audit.models import AuditEvent
from chat import limits
from chat.errors import LimitExceeded

pytestmark = pytest.mark.django_db

HELLO = {"model": "medserver-demo", "messages": [{"role": "user", "content": "Hi"}]}


def _command_key(capsys, *args) -> str:
    call_command("create_api_token", *args)
    return capsys.readouterr().out.strip().splitlines()[-1]


def test_create_api_token_service_makes_an_account_that_cannot_sign_in(capsys, engine):
    key = _command_key(capsys, "--service", "open-webui", "--streams", "6", "--rate", "300/minute")
    token = api_tokens.api_token_find(key)
    assert token.service and token.max_streams == 6 and token.rate_limit == "300/minute"
    assert token.owner.username == "open-webui"
    assert not token.owner.has_usable_password()
    # A second token for the same front end reuses its account.
    again = api_tokens.api_token_find(_command_key(capsys, "--service", "open-webui"))
    assert again.owner == token.owner and again.max_streams is None


@pytest.mark.parametrize(
    "args",
    [
        ("--service", "webui", "--rate", "lots"),
        ("--service", "webui", "--streams", "0"),
        ("clinician", "--streams", "3"),
        ("--service", "clinician"),  # a person's account, not a front end's
        (),
    ],
)
def test_create_api_token_refuses_bad_limits(user, args):
    with pytest.raises(CommandError):
        call_command("create_api_token", *args)
    assert not ApiToken.objects.filter(service=True).exists()


def test_a_service_token_has_its_own_stream_cap(user, medserver_settings):
    medserver_settings(max_user_streams=1)
    service, _ = api_tokens.api_token_create(owner=user, name="webui", service=True, max_streams=3)
    personal, _ = api_tokens.api_token_create(owner=user, name="mine")
    slots = [limits.reserve_stream(user, service) for _ in range(3)]
    with pytest.raises(LimitExceeded) as refused:
        limits.reserve_stream(user, service)
    assert refused.value.retry_after == 1  # a slot frees within a second or so
    # The owner's own budget is untouched by the service's answers.
    mine = limits.reserve_stream(user, personal)
    with pytest.raises(LimitExceeded):
        limits.reserve_stream(user)
    for slot in [*slots, mine]:
        limits.release_stream(slot)


def test_a_service_tokens_rate_budget_is_its_own(client, user, engine, medserver_settings):
    medserver_settings(rate_limit="2/minute")
    _, key = api_tokens.api_token_create(
        owner=user, name="webui", service=True, rate_limit="5/minute"
    )
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    statuses = [client.get("/v1/models", **headers).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    refused = client.get("/v1/models", **headers)
    assert "webui" in refused.json()["error"]["message"]
    # The owner's budget was not spent by the service token: listing models is not a
    # generation, so a personal token gets ten times --rate-limit (2/minute) of them.
    _, personal = api_tokens.api_token_create(owner=user, name="mine")
    mine = {"HTTP_AUTHORIZATION": f"Bearer {personal}"}
    statuses = [client.get("/v1/models", **mine).status_code for _ in range(21)]
    assert statuses == [200] * 20 + [429]


def test_open_webui_headers_name_the_clinician_in_audit_and_provenance(
    client, user, engine, medserver_settings
):
    _, key = api_tokens.api_token_create(owner=user, name="Open WebUI", service=True)
    response = client.post(
        "/v1/chat/completions",
        {**HELLO, "max_tokens": 4},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
        HTTP_X_OPENWEBUI_USER_NAME="Dr In%C3%A9s Ruiz",  # as Open WebUI quotes it
        HTTP_X_OPENWEBUI_USER_ID="7f3c",
        HTTP_X_OPENWEBUI_USER_EMAIL="ines@clinic.example",
        HTTP_X_OPENWEBUI_USER_ROLE="user",
    )
    assert response.status_code == 200, response.content
    provenance = response.json()["provenance"]
    assert provenance["end_user"] == {
        "source": "Open WebUI headers",
        "name": "Dr Inés Ruiz",
        "id": "7f3c",
        "email": "ines@clinic.example",
        "role": "user",
    }
    assert provenance["token"] == {"name": "Open WebUI", "service": True}
    assert provenance["model"] == "medserver-demo" and provenance["engine"]
    event = AuditEvent.objects.get(action=AuditEvent.Action.API_ANSWER)
    assert event.username == "clinician"
    assert "Dr Inés Ruiz <ines@clinic.example>" in event.detail
    assert "service token Open WebUI" in event.detail


def test_the_openai_user_field_is_recorded_and_checked(client, user, engine, medserver_settings):
    _, key = api_tokens.api_token_create(owner=user, name="LibreChat", service=True)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    answer = client.post(
        "/api/chat",
        {"messages": HELLO["messages"], "max_tokens": 4, "user": "librechat-user-42\x00"},
        content_type="application/json",
        **headers,
    )
    assert answer.json()["provenance"]["end_user"] == {
        "source": "user field",
        "id": "librechat-user-42",
    }
    assert "librechat-user-42 (user field)" in AuditEvent.objects.get(action="api_answer").detail
    refused = client.post(
        "/v1/chat/completions", {**HELLO, "user": 42}, content_type="application/json", **headers
    )
    assert refused.status_code == 422 and refused.json()["error"]["param"] == "user"


def test_a_service_token_without_limits_of_its_own_serves_a_clinic(user, medserver_settings):
    medserver_settings(max_user_streams=1, rate_limit="20/minute")
    token, _ = api_tokens.api_token_create(owner=user, name="webui", service=True)
    assert limits.service_stream_cap(token) == limits.SERVICE_STREAMS
    assert limits.service_rate(token) == "200/minute"
    medserver_settings(max_user_streams=12)
    assert limits.service_stream_cap(token) == 12


def test_staff_make_a_service_token_in_admin_and_see_its_key_once(
    client, user, django_user_model, engine
):
    staff = django_user_model.objects.create_superuser("it-admin", password="a-long-passphrase")
    client.force_login(staff)
    form = {
        "owner": user.pk,
        "name": "Open WebUI",
        "service": "on",
        "max_streams": "6",
        "rate_limit": "240/minute",
    }
    response = client.post("/admin/api/apitoken/add/", form, follow=True)
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    key = re.search(r"(ms_\S+) — copy it now", shown[0]).group(1)
    token = api_tokens.api_token_find(key)
    assert (token.service, token.max_streams, token.rate_limit) == (True, 6, "240/minute")
    assert key not in client.get(f"/admin/api/apitoken/{token.pk}/change/").content.decode()
    assert AuditEvent.objects.filter(action="api_token_create", username="it-admin").exists()
    bad = client.post("/admin/api/apitoken/add/", {**form, "rate_limit": "lots"})
    assert bad.status_code == 200 and "rate limit must look like" in bad.content.decode()
    client.post(
        "/admin/api/apitoken/",
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    assert api_tokens.api_token_find(key) is None
