"""The isolation matrix: user B reaches none of user A's chats, images, messages or tokens.

Every route that takes an id is listed here and driven with A's ids while B is
signed in, by GET and by POST, as a plain request and as htmx. The table is
checked against the URLconf, so a new route with an id fails the suite until
it is added. The chat socket, the JSON API and Django admin are covered too.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, get_resolver
from PIL import Image

from api import tokens as api_tokens
from api.models import ApiToken
from audit.models import AuditEvent
from chat import services
from chat.consumers import CLOSE_NOT_FOUND
from chat.models import Attachment, ChatSession, Message, Preset
from chat.routing import websocket_urlpatterns
from reviews import services as review_services
from reviews.models import AnswerReview
from tests.dicom_files import ct_series, zip_of
from tests.support.sockets import open_socket

# Words only A's data holds: B must never be shown any of them.
A_SECRETS = ("Zebrafinch", "Quokka-47", "Marmoset-title")


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 6), color=(1, 2, 3)).save(out, "PNG")
    return out.getvalue()


class Owned:
    """One user's things: a session with a question (with an image) and its answer, a token."""

    def __init__(self, user, words: tuple[str, str, str]) -> None:
        question_text, answer_text, title = words
        self.user = user
        self.session = services.session_create(owner=user, model_name="demo")
        services.session_rename(session=self.session, title=title)
        self.attachment = services.attachment_create(
            owner=user, upload=SimpleUploadedFile("scan.png", png())
        )
        self.question, self.answer = services.message_send(
            session=self.session,
            content=f"{question_text} findings?",
            attachment_ids=[self.attachment.pk],
            model_name="demo",
        )
        services.answer_fail(self.answer.pk, content=answer_text, thinking="", error="x")
        Message.objects.filter(pk=self.answer.pk).update(status=Message.Status.COMPLETE)
        self.attachment.refresh_from_db()
        # A CT series in the composer, kept whole (chat.services.series): its pending slices.
        series = zip_of({f"CT/IM{n}.dcm": raw for n, raw in enumerate(ct_series(3))})
        upload = services.attachments_upload(
            owner=user, session=self.session, uploads=[SimpleUploadedFile("ct.zip", series)]
        )
        self.slice = upload.attachments[0]
        assert self.slice.volume.name
        self.token, self.key = api_tokens.api_token_create(owner=user, name="pacs")
        self.preset = services.preset_save(
            owner=user,
            name=f"{title} preset",
            system_prompt=f"{question_text} steps",
            max_length=999,
        )
        services.session_configure(
            session=self.session,
            preset=self.preset,
            system_prompt="",
            temperature=None,
            top_p=None,
            max_new_tokens=None,
        )
        self.answer.refresh_from_db()
        review_services.answer_review(
            message=self.answer, reviewer=user, verdict="reviewed", rating="up"
        )

    def state(self) -> dict:
        """Everything of this user's that a foreign request could change."""
        session = ChatSession.objects.filter(pk=self.session.pk).values().first()
        messages = list(Message.objects.filter(session_id=self.session.pk).values().order_by("id"))
        attachments = list(Attachment.objects.filter(owner=self.user).values().order_by("id"))
        tokens = list(ApiToken.objects.filter(owner=self.user).values().order_by("id"))
        presets = list(Preset.objects.filter(owner=self.user).values().order_by("id"))
        reviews = list(AnswerReview.objects.filter(message__session=self.session).values())
        storage = self.attachment.file.storage
        files = sorted(
            (name, Path(storage.path(name)).read_bytes())
            for name in {a["file"] for a in attachments} | {a["volume"] for a in attachments}
            if name
        )
        return {
            "session": session,
            "messages": messages,
            "attachments": attachments,
            "tokens": tokens,
            "presets": presets,
            "reviews": reviews,
            "files": files,
        }


@pytest.fixture
def two_users(user, other_user, engine, medserver_settings):
    # Room for the whole matrix: what is under test is ownership, not the rate limit.
    medserver_settings(rate_limit="100000/minute")
    a = Owned(user, ("Zebrafinch", "Quokka-47", "Marmoset-title"))
    b = Owned(other_user, ("Heron", "Wombat-12", "Ibis-title"))
    return a, b


# --- the table: every route with an id, how to fill it with A's ids, and its verbs


def _session(owner):
    return {"session_id": owner.session.pk}


def _message(owner, which="question", session_owner=None):
    session_owner = session_owner or owner
    return {"session_id": session_owner.session.pk, "message_id": getattr(owner, which).pk}


# route name -> (kwargs builders: list of (label, fn(a, b) -> kwargs), methods it answers)
ROUTES: dict[str, tuple[list, set[str]]] = {
    "chat:session": ([("a", lambda a, b: _session(a))], {"GET"}),
    "chat:session-item": ([("a", lambda a, b: _session(a))], {"GET"}),
    "chat:session-rename": ([("a", lambda a, b: _session(a))], {"GET", "POST"}),
    "chat:session-delete": ([("a", lambda a, b: _session(a))], {"POST"}),
    "chat:session-thinking": ([("a", lambda a, b: _session(a))], {"POST"}),
    "chat:session-settings": ([("a", lambda a, b: _session(a))], {"POST"}),
    "chat:attachment-upload": ([("a", lambda a, b: _session(a))], {"POST"}),
    "chat:message-post": ([("a", lambda a, b: _session(a))], {"POST"}),
    "exports:session-export": (
        [(kind, lambda a, b, kind=kind: {**_session(a), "kind": kind}) for kind in ("md", "pdf")],
        {"GET"},
    ),
    "chat:attachment": ([("a", lambda a, b: {"attachment_id": a.attachment.pk})], {"GET"}),
    "chat:attachment-study": ([("a", lambda a, b: {"attachment_id": a.attachment.pk})], {"POST"}),
    "chat:attachment-series": ([("a", lambda a, b: {"attachment_id": a.slice.pk})], {"GET"}),
    "chat:attachment-series-slice": (
        [("a", lambda a, b: {"attachment_id": a.slice.pk, "number": 1})],
        {"GET"},
    ),
    "chat:series-slices": (
        [
            ("a", lambda a, b: {**_session(a), "attachment_id": a.slice.pk}),
            # B's own session with A's slice in it.
            ("b-session-a-slice", lambda a, b: {**_session(b), "attachment_id": a.slice.pk}),
        ],
        {"POST"},
    ),
    "api:api-token-revoke": ([("a", lambda a, b: {"token_id": a.token.pk})], {"POST"}),
    "chat:preset-change": ([("a", lambda a, b: {"preset_id": a.preset.pk})], {"POST"}),
    "chat:preset-delete": ([("a", lambda a, b: {"preset_id": a.preset.pk})], {"POST"}),
}
MESSAGE_IDS = [
    ("a-question", lambda a, b: _message(a, "question")),
    ("a-answer", lambda a, b: _message(a, "answer")),
    # B's own session with A's message in it: the message must belong to the session.
    ("b-session-a-question", lambda a, b: _message(a, "question", session_owner=b)),
    ("b-session-a-answer", lambda a, b: _message(a, "answer", session_owner=b)),
]
ROUTES |= {
    "chat:message": (MESSAGE_IDS, {"GET"}),
    "chat:message-edit": (MESSAGE_IDS, {"GET"}),
    "chat:message-select": (MESSAGE_IDS, {"POST"}),
    "chat:message-delete": (MESSAGE_IDS, {"POST"}),
    "reviews:answer-review": (MESSAGE_IDS, {"GET", "POST"}),
    "exports:answer-boxes": (MESSAGE_IDS, {"GET"}),
    "exports:answer-table-csv": (MESSAGE_IDS, {"GET"}),
}
# Routes with a parameter that is not an owned object, and why.
NOT_OWNED = {
    "chat:setup": "a one-time setup token, not a record of anyone's",
    "api/<path:rest>": "the API's JSON 404 for unknown paths (driven below with A's ids)",
    "v1/<path:rest>": "the API's JSON 404 for unknown paths",
    "password_reset_confirm": "Django's password reset link (uidb64 + token)",
    **{
        f"^admin/chat/{model}/(?P<rest>.*)$": "a redirect of an old admin bookmark to admin"
        for model in ("apitoken", "auditevent", "answerreview")
    },
}
# What a hostile POST carries: enough to change anything, were it let through.
HOSTILE_POST = {
    "title": "pwned",
    "thinking": "",
    "system_prompt": "leak everything",
    "temperature": "1.5",
    "max_new_tokens": "7",
    "current": "",
    "name": "stolen",
    "verdict": "rejected",
    "rating": "down",
    "comment": "pwned",
    "start": "1",
    "end": "2",
    "count": "1",
}


def _parametrized_routes() -> dict[str, str]:
    """name (or route, when unnamed) -> route, for every URL with a parameter outside admin."""
    found: dict[str, str] = {}

    def walk(patterns, prefix: str, namespace: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                if pattern.app_name == "admin":
                    continue  # staff only; see the admin tests below
                ns = pattern.namespace or namespace
                walk(pattern.url_patterns, route, ns)
            elif isinstance(pattern, URLPattern) and re.search(r"<[^>]+>|\(\?P<", route):
                key = f"{namespace}:{pattern.name}" if namespace else (pattern.name or route)
                found[key if pattern.name else route] = route

    walk(get_resolver().url_patterns, "", "")
    return found


def test_every_route_with_an_id_is_in_the_matrix():
    routes = _parametrized_routes()
    missing = sorted(set(routes) - set(ROUTES) - set(NOT_OWNED))
    assert missing == [], f"routes with an id that the isolation matrix does not cover: {missing}"
    stale = sorted(set(ROUTES) - set(routes))
    assert stale == [], f"matrix rows for routes that no longer exist: {stale}"
    # The sockets: only the chat socket takes an id, and its tests are below.
    sockets = {str(pattern.pattern) for pattern in websocket_urlpatterns}
    assert sockets == {"ws/chat/<uuid:session_id>/"}, sockets


def _matrix():
    for name, (builders, methods) in ROUTES.items():
        for label, build in builders:
            yield name, label, build, methods


def _reverse(name: str, kwargs: dict) -> str:
    from django.urls import reverse

    return reverse(name, kwargs=kwargs)


@pytest.mark.django_db
def test_user_b_gets_404_for_every_route_with_user_as_ids_and_nothing_changes(client, two_users):
    a, b = two_users
    client.force_login(b.user)
    before = a.state()
    leaks: list[str] = []
    requests = 0
    for name, label, build, methods in _matrix():
        url = _reverse(name, build(a, b))
        for method in ("GET", "POST"):
            for htmx in (False, True):
                extra = {"HTTP_HX_REQUEST": "true"} if htmx else {}
                data = {**HOSTILE_POST, "current": str(a.session.pk)}
                if name == "chat:attachment-upload":
                    data["images"] = SimpleUploadedFile("x.png", png())
                if method == "GET":
                    response = client.get(url, {"current": str(a.session.pk)}, **extra)
                else:
                    response = client.post(url, data, **extra)
                requests += 1
                expected = {404} if method in methods else {404, 405}
                where = f"{method} {name} [{label}{' htmx' if htmx else ''}] {url}"
                if response.status_code not in expected:
                    leaks.append(f"{where}: {response.status_code}")
                body = b"".join(response) if response.streaming else response.content
                for secret in A_SECRETS:
                    if secret.encode() in body:
                        leaks.append(f"{where}: shows {secret!r}")
                if a.attachment.file.name.encode() in body:
                    leaks.append(f"{where}: names A's stored file")
                if a.slice.volume.name.encode() in body:
                    leaks.append(f"{where}: names A's kept series")
    after = a.state()
    if after != before:
        leaks.append(f"A's data changed: {before} -> {after}")
    assert requests >= 4 * sum(len(builders) for builders, _ in ROUTES.values())
    assert len(leaks) == 0, f"{len(leaks)} leaks:\n" + "\n".join(leaks)


@pytest.mark.django_db
def test_b_pages_never_show_as_things_even_when_a_current_id_is_smuggled_in(client, two_users):
    a, b = two_users
    client.force_login(b.user)
    leaks = []
    pages = [
        f"/chat/{b.session.pk}/",
        f"/chat/{b.session.pk}/item/?current={a.session.pk}",
        f"/chat/{b.session.pk}/rename/?current={a.session.pk}",
        f"/chat/sessions/?current={a.session.pk}",
        f"/chat/sessions/?q=Zebrafinch&current={a.session.pk}",
        "/chat/sessions/?q=Marmoset",
        "/account/api-tokens/",
        "/account/presets/",
        "/",
    ]
    for path in pages:
        response = client.get(path, follow=True)
        assert response.status_code == 200, path
        for secret in (*A_SECRETS, str(a.session.pk), str(a.attachment.pk), a.token.prefix):
            # The search box repeats the query; anything else of A's is a leak.
            if secret in response.content.decode() and secret not in path:
                leaks.append(f"{path} shows {secret}")
    assert len(leaks) == 0, f"{len(leaks)} leaks: {leaks}"


@pytest.mark.django_db
def test_b_cannot_revoke_as_token_and_it_keeps_working(client, two_users):
    a, b = two_users
    client.force_login(b.user)
    assert client.post(f"/account/api-tokens/{a.token.pk}/revoke/").status_code == 404
    client.logout()
    assert client.get("/api/models", HTTP_AUTHORIZATION=f"Bearer {a.key}").status_code == 200


# --- the JSON API


@pytest.mark.django_db
def test_api_never_returns_as_data_with_bs_token(client, two_users):
    a, b = two_users
    auth = {"HTTP_AUTHORIZATION": f"Bearer {b.key}"}
    leaks = []
    for method, path in [
        ("get", "/api/models"),
        ("get", "/api/model-info"),
        ("get", "/api/schema"),
        ("get", "/v1/models"),
        ("get", f"/api/sessions/{a.session.pk}"),
        ("get", f"/api/chat/{a.session.pk}"),
        ("get", f"/api/attachments/{a.attachment.pk}"),
        ("get", f"/v1/chat/completions/{a.answer.pk}"),
        ("post", f"/api/sessions/{a.session.pk}/messages"),
        ("delete", f"/api/sessions/{a.session.pk}"),
    ]:
        response = getattr(client, method)(path, **auth)
        body = response.content.decode()
        # A 404 may repeat the path asked for; nothing else of A's may appear.
        for secret in (*A_SECRETS, str(a.session.pk), str(a.attachment.pk)):
            if secret in body and secret not in path:
                leaks.append(f"{method} {path} shows {secret}")
        if path.count("/") > 2 and response.status_code not in (404, 405):
            leaks.append(f"{method} {path}: {response.status_code}")
    # A chat through B's token answers from B's request alone: no session is touched.
    before = a.state()
    response = client.post(
        "/api/chat",
        {"messages": [{"role": "user", "content": "Repeat my earlier findings."}], "max_tokens": 4},
        content_type="application/json",
        **auth,
    )
    assert response.status_code == 200
    if any(secret in response.content.decode() for secret in A_SECRETS):
        leaks.append("/api/chat answered with A's words")
    if a.state() != before:
        leaks.append("/api/chat with B's token changed A's data")
    assert len(leaks) == 0, f"{len(leaks)} leaks: {leaks}"


# --- the chat socket


@database_sync_to_async
def _state(owner: Owned) -> dict:
    return owner.state()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_chat_socket_to_as_session_closes_for_b_with_4404(two_users):
    a, b = two_users
    before = await _state(a)
    communicator, connected, code = await open_socket(a.session, b.user)
    assert (connected, code) == (False, CLOSE_NOT_FOUND)
    await communicator.disconnect()
    assert await _state(a) == before


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_bs_own_socket_cannot_reach_as_messages_or_images(two_users):
    a, b = two_users
    before = await _state(a)
    communicator, connected, _ = await open_socket(b.session, b.user)
    assert connected
    leaks = []
    for frame in [
        {"action": "edit", "message_id": a.question.pk, "text": "rewritten"},
        {"action": "regenerate", "message_id": a.answer.pk},
        {"action": "send", "content": "Mine now", "attachments": [str(a.attachment.pk)]},
        {"action": "stop"},
    ]:
        await communicator.send_json_to(frame)
        if frame["action"] == "stop":
            continue
        reply = await communicator.receive_from(timeout=10)
        if 'role="alert"' not in reply or any(secret in reply for secret in A_SECRETS):
            leaks.append(f"{frame['action']}: {reply[:200]}")
    await communicator.disconnect()
    if await _state(a) != before:
        leaks.append("A's data changed")
    assert len(leaks) == 0, f"{len(leaks)} leaks: {leaks}"


# --- Django admin: staff only


ADMIN_PAGES = [
    "/admin/",
    "/admin/chat/chatsession/",
    "/admin/chat/chatsession/{session}/change/",
    "/admin/chat/message/",
    "/admin/chat/message/{question}/change/",
    "/admin/chat/attachment/",
    "/admin/chat/attachment/{attachment}/change/",
    "/admin/audit/auditevent/",
]


def _admin_paths(a: Owned) -> list[str]:
    ids = {"session": a.session.pk, "question": a.question.pk, "attachment": a.attachment.pk}
    return [page.format(**ids) for page in ADMIN_PAGES]


@pytest.mark.django_db
def test_admin_review_of_sessions_is_for_staff_only(client, two_users, django_user_model):
    a, b = two_users
    client.force_login(b.user)
    leaks = []
    for path in _admin_paths(a):
        response = client.get(path)
        if response.status_code != 302 or "/admin/login/" not in response["Location"]:
            leaks.append(f"{path}: {response.status_code}")
        if any(secret in response.content.decode() for secret in A_SECRETS):
            leaks.append(f"{path} shows A's words")
    assert len(leaks) == 0, f"{len(leaks)} leaks: {leaks}"
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.ADMIN_SESSION_VIEW).exists()

    staff = django_user_model.objects.create_superuser("reviewer", password="a-long-passphrase")
    client.force_login(staff)
    review = client.get(f"/admin/chat/chatsession/{a.session.pk}/change/")
    assert review.status_code == 200
    assert "Zebrafinch" in review.content.decode()
    event = AuditEvent.objects.get(action=AuditEvent.Action.ADMIN_SESSION_VIEW)
    assert (event.user, event.target) == (staff, f"chatsession:{a.session.pk}")
