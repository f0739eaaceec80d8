"""Patient images on disk go with their rows: a deleted chat, message or user
leaves no file of theirs, however the rows are deleted; unsent uploads older
than a day are removed at start."""

from __future__ import annotations

import datetime
import io
import os
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from chat import attachment_files, services
from chat.models import Attachment
from tests.chat.conversation import finish_answer

pytestmark = pytest.mark.django_db(transaction=True)


def _upload(name="Kowalczyk_Wieslawa.png") -> SimpleUploadedFile:
    out = io.BytesIO()
    Image.new("RGB", (12, 8), (200, 30, 30)).save(out, format="PNG")
    return SimpleUploadedFile(name, out.getvalue(), content_type="image/png")


def files_of(user) -> list[Path]:
    folder = Path(settings.MEDIA_ROOT) / "attachments" / str(user.pk)
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.fixture
def chat(user):
    return services.session_create(owner=user, model_name="demo")


def _sent_and_unsent(user, chat):
    sent = services.attachments_upload(owner=user, session=chat, uploads=[_upload()])
    question, answer = services.message_send(
        session=chat, content="Look", attachment_ids=[a.pk for a in sent.attachments]
    )
    finish_answer(answer)
    unsent = services.attachments_upload(owner=user, session=chat, uploads=[_upload()])
    return question, unsent.attachments[0]


def test_deleting_a_chat_removes_its_sent_and_unsent_images_from_disk(client, user, chat):
    _, unsent = _sent_and_unsent(user, chat)
    assert len(files_of(user)) == 2
    client.force_login(user)

    services.session_delete(session=chat)

    assert files_of(user) == []
    assert client.get(f"/attachments/{unsent.pk}/").status_code == 404


def test_deleting_a_user_in_admin_removes_their_upload_folder(client, user, chat, admin_user):
    _sent_and_unsent(user, chat)
    stray = Path(settings.MEDIA_ROOT) / "attachments" / str(user.pk) / "left-by-a-crash.png"
    stray.write_bytes(b"x")
    client.force_login(admin_user)

    response = client.post(f"/admin/auth/user/{user.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert Attachment.objects.count() == 0
    assert not (Path(settings.MEDIA_ROOT) / "attachments" / str(user.pk)).exists()


def test_a_queryset_delete_removes_files_but_keeps_one_another_row_still_uses(user, chat):
    question, _ = _sent_and_unsent(user, chat)
    services.message_edit(message=question, content="Look again")  # shares the image file
    shared = question.attachments.get().file.name

    Attachment.objects.filter(message=question).delete()
    assert (Path(settings.MEDIA_ROOT) / shared).exists()  # the edited version still shows it

    Attachment.objects.all().delete()
    assert files_of(user) == []


def test_unsent_uploads_older_than_a_day_are_removed_at_start(user, chat):
    question, unsent = _sent_and_unsent(user, chat)
    recent = services.attachments_upload(owner=user, session=chat, uploads=[_upload()])
    old = timezone.now() - datetime.timedelta(days=1, minutes=1)
    Attachment.objects.filter(pk=unsent.pk).update(created_at=old)
    Attachment.objects.filter(message=question).update(created_at=old)
    orphan = Path(settings.MEDIA_ROOT) / "attachments" / str(user.pk) / "orphan.png"
    orphan.write_bytes(b"x")
    os.utime(orphan, (old.timestamp(), old.timestamp()))

    removed = attachment_files.remove_stale_uploads()

    assert removed == 2
    assert not Attachment.objects.filter(pk=unsent.pk).exists() and not orphan.exists()
    kept = {a.pk for a in Attachment.objects.all()}
    assert recent.attachments[0].pk in kept and question.attachments.exists()
    assert len(files_of(user)) == 2
