"""The chat list: grouped by date, search results with the words that matched,
and no pile of empty "New chat" entries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from chat import services
from chat.models import ChatSession
from tests.chat.conversation import exchange

pytestmark = pytest.mark.django_db


def _aged(session: ChatSession, days: int) -> None:
    ChatSession.objects.filter(pk=session.pk).update(
        updated_at=timezone.now() - timedelta(days=days)
    )


def test_chats_are_grouped_by_when_they_were_last_used(client, user):
    for days, title in ((0, "Sepsis"), (1, "Asthma"), (3, "Gout"), (12, "Anaemia"), (90, "Rash")):
        session = services.session_create(owner=user, model_name="demo")
        exchange(session, title, "A")
        _aged(session, days)
    client.force_login(user)
    html = client.get("/chat/sessions/").content.decode()
    groups = ["Today", "Yesterday", "Previous 7 days", "Previous 30 days"]
    positions = [html.index(f'<h2 class="session-group">{group}</h2>') for group in groups]
    assert positions == sorted(positions)
    assert html.index("Yesterday") < html.index("Asthma") < html.index("Previous 7 days")
    older = timezone.localtime(timezone.now() - timedelta(days=90))
    assert f'<h2 class="session-group">{older:%B %Y}</h2>' in html


def test_search_results_show_the_words_around_the_match(client, user):
    session = services.session_create(owner=user, model_name="demo")
    exchange(
        session,
        "A 58-year-old with crushing chest pain <b>radiating</b> to the left arm since noon.",
        "Consider ACS.",
    )
    client.force_login(user)
    html = client.get("/chat/sessions/", {"q": "CHEST pain"}).content.decode()
    snippet = html.split('class="session-snippet">')[1].split("</span>")[0]
    assert "<mark>chest pain</mark>" in snippet
    assert "crushing " in snippet and "&lt;b&gt;radiating" in snippet  # escaped, not markup
    assert 'class="session-snippet"' not in client.get("/chat/sessions/").content.decode()


def test_new_chat_reuses_an_empty_one_instead_of_piling_them_up(client, user):
    client.force_login(user)
    first = services.session_for_new_chat(owner=user, model_name="demo")
    used = services.session_create(owner=user, model_name="demo")
    exchange(used, "Q", "A")
    for _ in range(3):
        client.post("/chat/new/")
    assert ChatSession.objects.filter(owner=user).count() == 2
    assert ChatSession.objects.filter(owner=user).first() == first  # on top again
