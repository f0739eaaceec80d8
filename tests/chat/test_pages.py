"""The chat pages through Django's test client: login, privacy, markup, uploads, setup."""

from __future__ import annotations

import io
import uuid
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from chat import services
from chat.models import Attachment, ChatSession
from chat.setup_link import setup_token
from inference.engine import Finished

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-passphrase"  # the conftest users' password
LOGIN_URL = reverse("login")


class _Page(HTMLParser):
    """Start tags with attributes, and the text of each <label for=...>."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.label_text: dict[str, str] = {}
        self._label_for: str | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        attributes = {name: value or "" for name, value in attrs}
        self.tags.append((tag, attributes))
        if tag == "label" and "for" in attributes:
            self._label_for = attributes["for"]
            self.label_text.setdefault(self._label_for, "")

    def handle_endtag(self, tag):
        if tag == "label":
            self._label_for = None

    def handle_data(self, data):
        if self._label_for:
            self.label_text[self._label_for] += data

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [
            a
            for name, a in self.tags
            if name == tag and all(a.get(key) == value for key, value in attrs.items())
        ]

    def accessible_name(self, attrs: dict[str, str]) -> str:
        return attrs.get("aria-label") or self.label_text.get(attrs.get("id", ""), "").strip()


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 10), (20, 120, 200)).save(out, format="PNG")
    return out.getvalue()


def _png_upload(name="xray.png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, _png(), content_type="image/png")


@pytest.fixture
def session(user) -> ChatSession:
    return services.session_create(owner=user, model_name="MedGemma demo")


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def _redirects_to_login(response, next_path: str, login_url: str = LOGIN_URL) -> bool:
    location = urlsplit(response.get("Location", ""))
    return (
        response.status_code == 302
        and location.path == login_url
        and (f"next={next_path}" in location.query.replace("%2F", "/"))
    )


# --- login is required everywhere but login, setup and health


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/"),
        ("get", f"/chat/{uuid.uuid4()}/"),
        ("post", "/chat/new/"),
        ("get", "/chat/new/"),
        ("get", f"/attachments/{uuid.uuid4()}/"),
        ("post", f"/chat/{uuid.uuid4()}/attachments/"),
    ],
)
def test_anonymous_user_is_sent_to_the_login_page(client, method, path):
    response = getattr(client, method)(path)

    assert _redirects_to_login(response, path), response.get("Location")


def test_anonymous_user_is_sent_from_admin_to_the_admin_login(client):
    response = client.get("/admin/")

    assert _redirects_to_login(response, "/admin/", reverse("admin:login"))
    assert client.get(reverse("admin:login")).status_code == 200


def test_anonymous_users_real_session_and_attachment_are_not_shown(client, session, user):
    image = services.attachment_create(owner=user, upload=_png_upload())

    for path in (f"/chat/{session.pk}/", f"/attachments/{image.pk}/"):
        response = client.get(path)
        assert _redirects_to_login(response, path)


def test_anonymous_upload_stores_nothing(client, session):
    client.post(f"/chat/{session.pk}/attachments/", {"images": [_png_upload()]})

    assert Attachment.objects.count() == 0


def test_health_answers_json_without_login(client, engine):
    response = client.get("/api/health")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == "ready"
    assert body["model"] == engine.state.model
    assert "version" in body and "queue_depth" in body


# --- signing in


def test_login_page_asks_for_username_and_password(client):
    response = client.get(LOGIN_URL)

    page = _Page(response.content.decode())
    assert response.status_code == 200
    (username,) = page.find("input", name="username")
    (password,) = page.find("input", name="password")
    assert password["type"] == "password"
    assert page.accessible_name(username) == "User name"
    assert page.accessible_name(password) == "Password"


def test_logging_in_opens_the_chat(client, user, engine):
    response = client.post(LOGIN_URL, {"username": "clinician", "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == reverse("chat:home")
    home = client.get("/")
    assert home.status_code == 302
    assert home["Location"].startswith("/chat/")


def test_wrong_password_is_refused_with_a_message(client, user):
    response = client.post(LOGIN_URL, {"username": "clinician", "password": "wrong-guess"})

    assert response.status_code == 200
    assert b"Wrong user name or password" in response.content
    assert "_auth_user_id" not in client.session


# --- privacy between users


def test_another_users_session_page_is_404(client, other_user, session, engine):
    client.force_login(other_user)

    assert client.get(f"/chat/{session.pk}/").status_code == 404


def test_another_users_attachment_is_404(client, other_user, user):
    image = services.attachment_create(owner=user, upload=_png_upload())
    client.force_login(other_user)

    assert client.get(f"/attachments/{image.pk}/").status_code == 404


def test_upload_into_another_users_session_is_404_and_stores_nothing(client, other_user, session):
    client.force_login(other_user)

    response = client.post(f"/chat/{session.pk}/attachments/", {"images": [_png_upload()]})

    assert response.status_code == 404
    assert Attachment.objects.count() == 0


def test_stale_session_id_is_404(signed_in, engine):
    assert signed_in.get(f"/chat/{uuid.uuid4()}/").status_code == 404


def test_stale_attachment_id_is_404(signed_in):
    assert signed_in.get(f"/attachments/{uuid.uuid4()}/").status_code == 404


# --- the chat page


def test_home_opens_the_newest_session(signed_in, user, session, engine):
    response = signed_in.get("/")

    assert response.status_code == 302
    assert response["Location"] == f"/chat/{session.pk}/"


def test_home_creates_a_first_session_when_there_is_none(signed_in, user, engine):
    response = signed_in.get("/")

    (created,) = ChatSession.objects.filter(owner=user)
    assert response["Location"] == f"/chat/{created.pk}/"


def test_session_page_has_a_labelled_message_box_and_send_button(signed_in, session, engine):
    response = signed_in.get(f"/chat/{session.pk}/")

    assert response.status_code == 200
    page = _Page(response.content.decode())
    (textarea,) = page.find("textarea", name="content")
    assert page.accessible_name(textarea) == "Message"
    send = [b for b in page.find("button") if page.accessible_name(b) == "Send"]
    assert len(send) == 1
    assert send[0].get("type", "submit") == "submit"


def test_each_message_carries_its_role_id_and_status(signed_in, session, user, engine):
    question, answer = services.message_send(session=session, content="Fever and cough?")
    services.answer_finish(
        answer.pk,
        content="Likely **pneumonia**.",
        thinking="",
        finished=Finished("stop", 10, 5, 0.1, 0.5),
        engine="transformers",
    )
    later_question, streaming = services.message_send(session=session, content="Antibiotics?")

    response = signed_in.get(f"/chat/{session.pk}/")

    page = _Page(response.content.decode())
    shown = [
        (a["data-message-role"], a["data-message-id"], a["data-status"])
        for _, a in page.tags
        if "data-message-role" in a
    ]
    assert shown == [
        ("user", str(question.pk), "complete"),
        ("assistant", str(answer.pk), "complete"),
        ("user", str(later_question.pk), "complete"),
        ("assistant", str(streaming.pk), "streaming"),
    ]
    html = response.content.decode()
    assert "<strong>pneumonia</strong>" in html
    assert "Fever and cough?" in html


def test_user_text_is_escaped_on_the_page(signed_in, session, engine):
    services.message_send(session=session, content="<script>alert('x')</script>")

    html = signed_in.get(f"/chat/{session.pk}/").content.decode()

    assert "&lt;script&gt;alert(" in html
    assert "<script>alert(" not in html


def test_session_page_lists_only_the_users_own_sessions(signed_in, session, other_user, engine):
    services.session_create(owner=other_user, model_name="m")
    mine = services.session_create(owner=session.owner, model_name="m")

    page = _Page(signed_in.get(f"/chat/{session.pk}/").content.decode())

    links = {a["href"] for _, a in page.tags if "session-link" in a.get("class", "")}
    assert links == {f"/chat/{session.pk}/", f"/chat/{mine.pk}/"}


def test_new_chat_post_creates_a_session_and_redirects_to_it(signed_in, user, session, engine):
    services.message_send(session=session, content="Not empty any more")

    response = signed_in.post("/chat/new/")

    new = ChatSession.objects.filter(owner=user).exclude(pk=session.pk).get()
    assert response.status_code == 302
    assert response["Location"] == f"/chat/{new.pk}/"
    assert new.model_name == engine.state.model


def test_new_chat_reuses_an_empty_newest_session(signed_in, user, session, engine):
    response = signed_in.post("/chat/new/")

    assert response["Location"] == f"/chat/{session.pk}/"
    assert ChatSession.objects.filter(owner=user).count() == 1


def test_new_chat_refuses_get(signed_in, engine):
    assert signed_in.get("/chat/new/").status_code == 405


# --- uploading images


def test_upload_stores_the_png_and_returns_thumbnail_and_hidden_input(signed_in, user, session):
    response = signed_in.post(f"/chat/{session.pk}/attachments/", {"images": [_png_upload()]})

    assert response.status_code == 200
    (stored,) = Attachment.objects.all()
    assert stored.owner == user and stored.message is None
    assert Path(stored.file.path).is_file()
    page = _Page(response.content.decode())
    (thumbnail,) = page.find("img")
    assert thumbnail["src"] == f"/attachments/{stored.pk}/"
    (hidden,) = page.find("input", type="hidden", name="attachments")
    assert hidden["value"] == str(stored.pk)
    assert b"alert-error" not in response.content


def test_uploaded_image_is_served_to_its_owner(signed_in, session):
    signed_in.post(f"/chat/{session.pk}/attachments/", {"images": [_png_upload()]})
    stored = Attachment.objects.get()

    response = signed_in.get(f"/attachments/{stored.pk}/")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    image = Image.open(io.BytesIO(b"".join(response.streaming_content)))
    assert image.size == (16, 10)


def test_upload_of_a_text_file_is_refused_with_a_message_and_stores_nothing(
    signed_in, session, settings
):
    notes = SimpleUploadedFile("notes.txt", b"Patient notes", content_type="text/plain")

    response = signed_in.post(f"/chat/{session.pk}/attachments/", {"images": [notes]})

    assert response.status_code == 200
    page = _Page(response.content.decode())
    assert page.find("input", name="attachments") == []
    assert b"Upload 1 could not be read as an image." in response.content
    assert Attachment.objects.count() == 0
    media = Path(settings.MEDIA_ROOT)
    assert not media.exists() or not any(p.is_file() for p in media.rglob("*"))


def test_upload_of_more_images_than_allowed_attaches_the_first_with_a_note(
    signed_in, session, medserver_settings
):
    medserver_settings(max_image_count=10)

    response = signed_in.post(
        f"/chat/{session.pk}/attachments/", {"images": [_png_upload() for _ in range(11)]}
    )

    html = response.content.decode()
    assert "11 images chosen: the first 10 are attached" in html
    assert "send the other 1 with the next one" in html
    assert html.count('name="attachments"') == 10
    assert Attachment.objects.count() == 10


# --- first-run setup


def _setup_form(username="admin"):
    return {"username": username, "password1": PASSWORD, "password2": PASSWORD}


def test_setup_link_shows_the_form_while_no_user_exists(client):
    response = client.get(f"/setup/{setup_token()}/")

    assert response.status_code == 200
    page = _Page(response.content.decode())
    assert page.find("input", name="username")
    assert page.find("input", name="password1")


def test_setup_link_creates_the_first_superuser_and_signs_them_in(client, engine):
    response = client.post(f"/setup/{setup_token()}/", _setup_form())

    assert response.status_code == 302
    assert response["Location"] == reverse("chat:home")
    admin = User.objects.get()
    assert (admin.username, admin.is_superuser, admin.is_staff) == ("admin", True, True)
    assert admin.check_password(PASSWORD)
    assert int(client.session["_auth_user_id"]) == admin.pk


def test_setup_with_htmx_redirects_the_client(client):
    response = client.post(
        f"/setup/{setup_token()}/", _setup_form(), headers={"HX-Request": "true"}
    )

    assert response["HX-Redirect"] == "/"
    assert User.objects.count() == 1


def test_setup_refuses_mismatched_passwords_and_creates_nobody(client):
    form = {**_setup_form(), "password2": "something-else-entirely"}

    response = client.post(f"/setup/{setup_token()}/", form)

    assert response.status_code == 200
    assert User.objects.count() == 0


@pytest.mark.parametrize("token", ["nonsense", setup_token()[:-2] + "xx"])
def test_setup_refuses_a_bad_token(client, token):
    assert client.get(f"/setup/{token}/").status_code == 404
    assert client.post(f"/setup/{token}/", _setup_form()).status_code == 404
    assert User.objects.count() == 0


def test_setup_link_is_dead_once_a_user_exists(client, user):
    token = setup_token()

    assert client.get(f"/setup/{token}/").status_code == 404
    assert client.post(f"/setup/{token}/", _setup_form("intruder")).status_code == 404
    assert not User.objects.filter(username="intruder").exists()


def test_setup_link_works_only_once(client, engine):
    token = setup_token()
    client.post(f"/setup/{token}/", _setup_form("admin"))
    client.logout()

    response = client.post(f"/setup/{token}/", _setup_form("second"))

    assert response.status_code == 404
    assert list(User.objects.values_list("username", flat=True)) == ["admin"]
