"""Reads of chat data, always scoped to the user who asks."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from django.db.models import F, Q, QuerySet

from chat.models import Attachment, ChatSession, Draft, Message, Preset
from imaging import localization, priors
from inference.engine import ChatTurn


@dataclass(frozen=True)
class Versions:
    """Where a message stands among the versions of its turn (edits or regenerations)."""

    number: int  # 1-based, oldest first
    count: int
    previous_id: int | None
    next_id: int | None


def sessions_for(user) -> QuerySet[ChatSession]:
    """The user's sessions, most recently active first."""
    return ChatSession.objects.filter(owner=user).order_by("-updated_at")


def sessions_search(user, query: str) -> QuerySet[ChatSession]:
    """The user's sessions whose title or any message contains `query`, most recent first."""
    query = query.strip()
    if not query:
        return sessions_for(user)
    matching = Q(title__icontains=query) | Q(messages__content__icontains=query)
    ids = ChatSession.objects.filter(matching, owner=user).values("pk")
    return sessions_for(user).filter(pk__in=ids)


@dataclass(frozen=True)
class Snippet:
    """A bit of a message around a search's match, to show under the chat's title."""

    before: str
    match: str
    after: str


SNIPPET_BEFORE, SNIPPET_AFTER = 30, 60


def search_snippets(sessions, query: str) -> dict:
    """For each of `sessions` with a message containing `query`: the first such
    message's words around the match (session id -> Snippet)."""
    query = query.strip()
    if not query:
        return {}
    found: dict = {}
    messages = Message.objects.filter(
        session__in=[s.pk for s in sessions], content__icontains=query
    ).order_by("id")
    for session_id, content in messages.values_list("session_id", "content").iterator():
        if session_id in found:
            continue
        start = content.lower().find(query.lower())
        if start < 0:
            continue
        end = start + len(query)
        # Whitespace folded; a space kept where the match meets a word; … where text is cut.
        before = " ".join(content[max(0, start - SNIPPET_BEFORE) : start].split())
        after = " ".join(content[end : end + SNIPPET_AFTER].split())
        if content[start - 1 : start].isspace():
            before += " "
        if content[end : end + 1].isspace():
            after = " " + after
        if start > SNIPPET_BEFORE:
            before = "…" + before
        if end + SNIPPET_AFTER < len(content):
            after += "…"
        found[session_id] = Snippet(before, content[start:end], after)
    return found


def session_for(user, session_id) -> ChatSession:
    """Return the user's session; raise ChatSession.DoesNotExist for anyone else's."""
    return ChatSession.objects.select_related("preset").get(owner=user, pk=session_id)


def messages_for(session: ChatSession) -> QuerySet[Message]:
    """Every message of the session, all branches, oldest first."""
    return session.messages.prefetch_related("attachments", "reviews").order_by("id")


def message_for(session: ChatSession, message_id) -> Message:
    """Return a message of `session`; raise Message.DoesNotExist for any other."""
    return session.messages.select_related("session").get(pk=message_id)


def active_path(session: ChatSession) -> list[Message]:
    """The branch the reader sees, oldest first: the active version at every turn.

    Each message carries `versions` (a Versions) for the ‹ n/m › switcher.
    """
    replies: dict[int | None, list[Message]] = defaultdict(list)
    for message in messages_for(session):
        replies[message.parent_id].append(message)
    path: list[Message] = []
    versions = replies.get(None)
    while versions:
        chosen = next((m for m in versions if m.active), versions[-1])
        chosen.versions = _versions(chosen, versions)
        path.append(chosen)
        versions = replies.get(chosen.pk)
    return path


def versions_of(message: Message) -> Versions:
    """Where `message` stands among its siblings."""
    siblings = list(
        Message.objects.filter(session_id=message.session_id, parent_id=message.parent_id)
        .order_by("id")
        .only("id")
    )
    return _versions(message, siblings)


def _versions(message: Message, siblings: list[Message]) -> Versions:
    ids = [sibling.pk for sibling in siblings]
    index = ids.index(message.pk)
    return Versions(
        number=index + 1,
        count=len(ids),
        previous_id=ids[index - 1] if index > 0 else None,
        next_id=ids[index + 1] if index + 1 < len(ids) else None,
    )


def conversation_stamp(path: list[Message]) -> str:
    """A short fingerprint of what a page shows: which messages, in which state."""
    shown = ",".join(f"{message.pk}:{message.status}" for message in path)
    return hashlib.sha256(shown.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class DraftView:
    """A chat's unsent composer: its text and the images still waiting to be sent."""

    text: str
    attachments: list[Attachment]


def draft_for(session: ChatSession) -> DraftView | None:
    """The owner's draft of `session`, with its images not sent since; None if none."""
    draft = Draft.objects.filter(owner=session.owner, session=session).first()
    if draft is None:
        return None
    pending = Attachment.objects.filter(
        owner=session.owner, pk__in=draft.attachment_ids, message__isnull=True
    )
    by_id = {str(attachment.pk): attachment for attachment in pending}
    attachments = [by_id[pk] for pk in draft.attachment_ids if pk in by_id]
    return DraftView(draft.text, attachments)


def attachments_for(user) -> QuerySet[Attachment]:
    """The user's images; nobody else's can be reached through it."""
    return Attachment.objects.filter(owner=user)


def conversation_before(answer: Message) -> tuple[ChatTurn, ...]:
    """The turns the model must see to write `answer`, oldest first.

    Only the branch that leads to `answer` counts, never other versions. Failed
    or empty answers are left out, and the user turns around them are joined,
    because the chat template requires user and model to alternate.
    """
    # Every message of the session, with its images (not messages_for: the
    # reviews it fetches for the page are nothing the model sees).
    messages = answer.session.messages.prefetch_related("attachments").order_by("id")
    by_id = {message.pk: message for message in messages}
    history: list[Message] = []
    parent_id = answer.parent_id
    while parent_id is not None:
        message = by_id[parent_id]
        history.append(message)
        parent_id = message.parent_id
    turns: list[ChatTurn] = []
    for message in reversed(history):
        if message.role == Message.Role.ASSISTANT:
            if not message.content.strip():
                continue
            role, images, labels = "assistant", (), ()
        else:
            role = "user"
            # Prior studies first, oldest first, each image's label saying which study it is.
            shown = [a for a in study_order(message.attachments.all()) if a.for_model]
            images = tuple(Path(a.file.path) for a in shown)
            labels = tuple(a.study_label for a in shown)  # "CT slice 12 of 120 (lung window)"
        if turns and turns[-1].role == role:
            previous = turns.pop()
            text = f"{previous.text}\n\n{message.content}".strip()
            images, labels = previous.images + images, previous.image_labels + labels
            turns.append(ChatTurn(role, text, images, labels))
        else:
            turns.append(ChatTurn(role, message.content, images, labels))
    return tuple(turns)


def study_order(attachments) -> list[Attachment]:
    """A message's images as the model reads them and the page shows them: prior
    studies first, oldest first, then the current one (imaging.priors.in_study_order).
    Each carries `study_label`, its label with the study it belongs to ("Prior
    study (14 months before the current one): CT slice 3 of 10 (lung window)",
    "Current study"), or its own label when no image of the message is prior."""
    ordered = priors.in_study_order(
        list(attachments), lambda a: a.prior if a.for_model else None, lambda a: a.label
    )
    for attachment, label in ordered:
        attachment.study_label = label if attachment.for_model else attachment.label
    return [attachment for attachment, _ in ordered]


@dataclass(frozen=True)
class LocatedFindings:
    """The boxes of an answer and the one image they are drawn on."""

    boxes: list[localization.Box]
    image: Attachment


def located_findings(answer: Message) -> LocatedFindings | None:
    """The localization boxes of `answer` and the image they belong to: the one
    image of the nearest question before it that has images. None when the
    answer holds no boxes, or that question holds several images (the boxes
    could be about any of them)."""
    if answer.role != Message.Role.ASSISTANT or not answer.content:
        return None
    boxes = localization.parse_boxes(answer.content)
    if not boxes:
        return None
    message = answer.parent
    while message is not None:
        if message.role == Message.Role.USER:
            images = list(message.attachments.all()[:2])
            if images:
                return LocatedFindings(boxes, images[0]) if len(images) == 1 else None
        message = message.parent
    return None


def presets_for(user) -> QuerySet[Preset]:
    """The presets `user` can choose: the built-in ones, then their own, by name."""
    return Preset.objects.filter(Q(owner__isnull=True) | Q(owner=user)).order_by(
        F("owner_id").asc(nulls_first=True), "name"
    )


def own_presets(user) -> QuerySet[Preset]:
    """The presets `user` made (and may change)."""
    return Preset.objects.filter(owner=user).order_by("name")


def pending_series_of(user, attachment_id) -> list[Attachment]:
    """The pending slices of `user` sharing the kept series of the attachment
    `attachment_id`; none when it is not a pending slice of a kept series."""
    attachment = attachments_for(user).filter(pk=attachment_id, message__isnull=True).first()
    if attachment is None or not attachment.volume.name:
        return []
    return list(
        Attachment.objects.filter(
            owner=user, message__isnull=True, volume=attachment.volume.name
        ).order_by("created_at")
    )
