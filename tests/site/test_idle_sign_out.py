"""Automatic sign-out after inactivity; background polling does not keep a session alive."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.django_db

ACTIVITY = "medserver_last_activity"


def idle_for(client, seconds: float) -> None:
    """Move the session's last activity into the past, as that much idle time would."""
    session = client.session
    session[ACTIVITY] = time.time() - seconds
    session.save()


def test_a_user_idle_past_the_timeout_is_signed_out(client, user, engine, medserver_settings):
    medserver_settings(session_timeout=30)
    client.force_login(user)
    assert client.get("/", follow=True).status_code == 200
    idle_for(client, 31 * 60)
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert client.get("/").status_code == 302  # signed out for good, not just redirected


def test_activity_within_the_timeout_keeps_the_session(client, user, engine, medserver_settings):
    medserver_settings(session_timeout=30)
    client.force_login(user)
    client.get("/", follow=True)
    idle_for(client, 29 * 60)
    assert client.get("/", follow=True).status_code == 200
    assert time.time() - client.session[ACTIVITY] < 5  # the visit counted as activity


def test_polling_does_not_count_as_activity(client, user, engine, medserver_settings):
    medserver_settings(session_timeout=30)
    client.force_login(user)
    client.get("/", follow=True)
    idle_for(client, 20 * 60)
    client.get("/api/health")
    assert time.time() - client.session[ACTIVITY] >= 20 * 60 - 5
    idle_for(client, 31 * 60)
    assert client.get("/").status_code == 302


def test_htmx_requests_are_sent_to_the_login_page(client, user, engine, medserver_settings):
    medserver_settings(session_timeout=1)
    client.force_login(user)
    client.get("/", follow=True)
    idle_for(client, 120)
    response = client.get(
        "/chat/status/", HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="http://testserver/chat/x/"
    )
    assert response["HX-Redirect"] == "/accounts/login/?next=%2Fchat%2Fx%2F&reason=idle"


def test_the_sign_in_page_says_the_user_was_signed_out_for_inactivity(
    client, user, engine, medserver_settings
):
    medserver_settings(session_timeout=1)
    client.force_login(user)
    client.get("/", follow=True)
    idle_for(client, 120)
    page = client.get("/", follow=True)
    assert "signed out after 1 minute without activity" in page.content.decode()
    assert "signed out after" not in client.get("/accounts/login/").content.decode()


def test_the_page_is_told_how_long_until_the_sign_out_without_that_counting(
    client, user, engine, medserver_settings
):
    medserver_settings(session_timeout=30)
    client.force_login(user)
    client.get("/", follow=True)
    idle_for(client, 10 * 60)
    status = client.get("/chat/status/").content.decode()
    assert 'data-seconds-left="1200"' in status or 'data-seconds-left="1199"' in status
    assert time.time() - client.session[ACTIVITY] >= 10 * 60 - 5


def test_stay_signed_in_restarts_the_count(client, user, engine, medserver_settings):
    medserver_settings(session_timeout=30)
    client.force_login(user)
    client.get("/", follow=True)
    idle_for(client, 29 * 60 + 50)
    answer = client.post("/account/stay-signed-in/").json()
    assert answer["seconds_left"] >= 30 * 60 - 2


def test_signing_in_again_from_an_idle_session_goes_through(
    client, user, engine, medserver_settings
):
    medserver_settings(session_timeout=1)
    client.force_login(user)
    client.get("/", follow=True)
    idle_for(client, 120)
    response = client.post(
        "/accounts/login/",
        {"username": user.username, "password": "a-long-passphrase", "next": "/chat/new/"},
    )
    assert response.status_code == 302 and response["Location"] == "/chat/new/"


def test_the_chat_page_holds_the_signed_out_card_naming_the_timeout(
    client, user, engine, medserver_settings
):
    medserver_settings(session_timeout=1)
    client.force_login(user)
    page = client.get("/", follow=True).content.decode()
    assert "You were signed out after 1 minute without activity" in page
    assert 'data-idle-timeout="1"' in page


def test_a_fraction_of_a_minute_is_a_timeout_in_seconds(client, user, engine, medserver_settings):
    medserver_settings(session_timeout=0.4)
    client.force_login(user)
    page = client.get("/", follow=True).content.decode()
    assert "You were signed out after 24 seconds without activity" in page
    assert 'data-idle-timeout="0.4"' in page  # the page warns half-way, 12 s before
    idle_for(client, 10)
    status = client.get("/chat/status/").content.decode()
    assert 'data-seconds-left="14"' in status or 'data-seconds-left="13"' in status
    idle_for(client, 25)
    assert client.get("/").status_code == 302


def test_activity_half_way_through_a_short_timeout_is_noted(
    client, user, engine, medserver_settings
):
    """The warning shows half-way; what the user does then must count (a minute's
    timeout notes activity every 15 s, not every half minute)."""
    medserver_settings(session_timeout=1)
    client.force_login(user)
    client.get("/", follow=True)
    idle_for(client, 20)
    client.get("/", follow=True)
    assert time.time() - client.session[ACTIVITY] < 5
