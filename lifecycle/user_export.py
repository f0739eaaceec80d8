"""`manage.py export_user`: everything MedServer holds of one user, in one zip file.

For a data-protection request. The zip holds:

    README.txt                 what is in it
    account.json               the account: names, e-mail, dates (never the password hash)
    chats/NNN-<title>/chat.md  each chat as the chat export shows it (thinking included)
    chats/NNN-<title>/chat.json  every message of it, every version, with reviews
    chats/NNN-<title>/images/  the images sent in it, as stored
    unsent-images/             images uploaded but never sent
    presets.json               their own presets
    reviews.json               the reviews they wrote, of any chat
    api-tokens.json            their API tokens' names and dates (never the keys)
    audit.json                 the audit trail's rows about them
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePath

from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify

from api.models import ApiToken
from audit.models import AuditEvent
from chat.models import Attachment, ChatSession, Preset
from exports import session_export
from reviews.models import AnswerReview

README = """Data held by MedServer about the user {username}, exported {when}.

account.json       the account (the password is stored only as a hash, not included)
chats/             one folder per chat: chat.md as the chat export shows it, chat.json
                   with every message (every version of edited or regenerated turns)
                   and its reviews, and images/ with the images sent in it
unsent-images/     images uploaded but never sent with a message
presets.json       the presets they made
reviews.json       the reviews of answers they wrote
api-tokens.json    their API tokens (names and dates; the keys are never stored)
audit.json         the audit trail's rows about them
"""


@dataclass(frozen=True)
class UserExport:
    chats: int
    messages: int
    images: int
    audit_events: int


def user_export(*, user, target) -> UserExport:
    """Write everything of `user` as a zip file to `target` (a path or a binary file)."""
    now = timezone.now()
    chats = messages = images = 0
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        write = archive.writestr
        write("README.txt", README.format(username=user.get_username(), when=_iso(now)))
        write("account.json", _json(_account(user)))
        sessions = ChatSession.objects.filter(owner=user).order_by("created_at")
        for number, session in enumerate(sessions, start=1):
            folder = f"chats/{number:03d}-{slugify(str(session))[:50] or 'chat'}"
            export = session_export(session, "md", include_thinking=True, exported_at=now)
            write(f"{folder}/chat.md", export.content)
            record, sent = _chat(session)
            write(f"{folder}/chat.json", _json(record))
            for attachment in sent:
                _add_image(archive, f"{folder}/images", attachment)
            chats += 1
            messages += len(record["messages"])
            images += len(sent)
        for attachment in Attachment.objects.filter(owner=user, message__isnull=True):
            _add_image(archive, "unsent-images", attachment)
            images += 1
        presets = Preset.objects.filter(owner=user).order_by("name")
        write("presets.json", _json([_preset(preset) for preset in presets]))
        reviews = AnswerReview.objects.filter(reviewer=user).order_by("created_at")
        write("reviews.json", _json([_review(review) for review in reviews]))
        tokens = ApiToken.objects.filter(owner=user).order_by("created_at")
        write("api-tokens.json", _json([_token(token) for token in tokens]))
        events = list(audit_events_of(user).order_by("created_at"))
        write("audit.json", _json([_event(event) for event in events]))
    return UserExport(chats, messages, images, len(events))


def audit_events_of(user):
    """The audit trail's rows about `user`: done by them, or sign-ins tried as them."""
    name = user.get_username()
    return AuditEvent.objects.filter(
        Q(user=user)
        | Q(username=name)
        | Q(action=AuditEvent.Action.LOGIN_FAILED, detail=name)
        | Q(target=f"user:{user.pk}")
    )


def _chat(session: ChatSession) -> tuple[dict, list[Attachment]]:
    record = {
        "id": str(session.id),
        "title": session.title,
        "model": session.model_name,
        "system_prompt": session.system_prompt,
        "preset": session.preset.name if session.preset else None,
        "created_at": _iso(session.created_at),
        "last_activity": _iso(session.updated_at),
        "messages": [],
    }
    sent: list[Attachment] = []
    for message in session.messages.order_by("id").prefetch_related("attachments", "reviews"):
        attachments = list(message.attachments.all())
        sent += attachments
        record["messages"].append(
            {
                "id": message.pk,
                "parent": message.parent_id,
                "shown": message.active,
                "role": message.role,
                "content": message.content,
                "thinking": message.thinking,
                "status": message.status,
                "error": message.error,
                "model": message.model_name,
                "created_at": _iso(message.created_at),
                "images": [_image_name(attachment) for attachment in attachments],
                "reviews": [_review(review) for review in message.reviews.all()],
            }
        )
    return record, sent


def _add_image(archive: zipfile.ZipFile, folder: str, attachment: Attachment) -> None:
    try:
        with attachment.file.open("rb") as handle:
            archive.writestr(f"{folder}/{_image_name(attachment)}", handle.read())
    except OSError:
        archive.writestr(f"{folder}/{attachment.pk}.missing.txt", "The file is no longer stored.")


def _image_name(attachment: Attachment) -> str:
    return f"{attachment.pk}{PurePath(attachment.file.name).suffix}"


def _account(user) -> dict:
    return {
        "username": user.get_username(),
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_staff": user.is_staff,
        "date_joined": _iso(user.date_joined),
        "last_login": _iso(user.last_login),
    }


def _preset(preset: Preset) -> dict:
    return {
        "name": preset.name,
        "description": preset.description,
        "system_prompt": preset.system_prompt,
        "version": preset.version,
        "created_at": _iso(preset.created_at),
    }


def _review(review: AnswerReview) -> dict:
    return {
        "answer": review.message_id,
        "reviewer": review.reviewer_name,
        "verdict": review.verdict,
        "rating": review.rating,
        "comment": review.comment,
        "updated_at": _iso(review.updated_at),
    }


def _token(token: ApiToken) -> dict:
    return {
        "name": token.name,
        "prefix": token.prefix,
        "created_at": _iso(token.created_at),
        "last_used_at": _iso(token.last_used_at),
        "revoked_at": _iso(token.revoked_at),
    }


def _event(event: AuditEvent) -> dict:
    return {
        "at": _iso(event.created_at),
        "by": event.username,
        "action": event.action,
        "target": event.target,
        "detail": event.detail,
        "address": event.address,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _json(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)
