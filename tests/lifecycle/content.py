"""A clinician's data of every kind, saved through MedServer's own services.

Run inside a data dir's Django (tests.lifecycle.datadir.django_run): every
piece of text carries `marker`, so the tests can look for it byte by byte.
"""

from __future__ import annotations

import io
import os

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from api import tokens as api_tokens
from chat import services
from chat.models import Attachment, Message
from reviews import services as review_services
from tests.chat.conversation import finish_answer


def noise_png(size: int = 256) -> bytes:
    """An image no other test makes: random pixels, which no compression shrinks."""
    image = Image.frombytes("RGB", (size, size), os.urandom(size * size * 3))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def clinician_data(username: str, marker: str) -> dict:
    """Save a user `username` with two chats (one with an edit and an image), an
    image never sent, a preset and an API token. Return the names of their image files."""
    users = get_user_model().objects
    user = users.create_user(username, email=f"{username}@clinic.example", password="pw-long-1")
    session = services.session_create(owner=user, model_name="demo")
    upload = services.attachments_upload(
        owner=user,
        session=session,
        uploads=[SimpleUploadedFile("scan.png", noise_png())],
    )
    assert not upload.errors, upload.errors
    question, answer = services.message_send(
        session=session,
        content=f"{marker} question about a pneumothorax",
        attachment_ids=[a.pk for a in upload.attachments],
    )
    finish_answer(answer, f"{marker} answer: a visceral pleural line", thinking=f"{marker} thought")
    edited, answer_two = services.message_edit(message=question, content=f"{marker} edited")
    finish_answer(answer_two, f"{marker} second answer")
    other = services.session_create(owner=user, model_name="demo")
    _, third = services.message_send(session=other, content=f"{marker} second chat")
    finish_answer(third, f"{marker} second chat answer")
    services.attachments_upload(
        owner=user, session=other, uploads=[SimpleUploadedFile("unsent.png", noise_png())]
    )
    services.preset_save(
        owner=user, name=f"{marker} preset", system_prompt=f"{marker} instructions", max_length=4000
    )
    api_tokens.api_token_create(owner=user, name=f"{marker} token")
    return {"files": sorted(Attachment.objects.filter(owner=user).values_list("file", flat=True))}


def review_latest_answer(*, reviewer: str, owner: str, comment: str) -> None:
    """`reviewer` reviews the latest answer in `owner`'s chats."""
    users = get_user_model().objects
    answer = Message.objects.filter(session__owner__username=owner, role="assistant").latest("id")
    review_services.answer_review(
        message=answer, reviewer=users.get(username=reviewer), verdict="reviewed", comment=comment
    )
