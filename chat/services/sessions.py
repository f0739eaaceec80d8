"""Writes of chat sessions: start, rename, delete, and their settings (preset included)."""

from __future__ import annotations

from django.db import transaction

from chat import generation_settings
from chat.errors import Rejected
from chat.models import ChatSession, Preset
from chat.services.messages import check_idle


def session_create(*, owner, model_name: str) -> ChatSession:
    return ChatSession.objects.create(owner=owner, model_name=model_name)


def session_for_new_chat(*, owner, model_name: str) -> ChatSession:
    """Return a fresh session for a new chat, reusing one still empty (brought to
    the top of the list) rather than piling up empty "New chat" entries."""
    empty = (
        ChatSession.objects.filter(owner=owner, messages__isnull=True, title="")
        .order_by("-updated_at")
        .first()
    )
    if empty is not None:
        empty.save(update_fields=["updated_at"])
        return empty
    return session_create(owner=owner, model_name=model_name)


def session_rename(*, session: ChatSession, title: str) -> ChatSession:
    """Give the session a title of the user's choosing.

    Raise Rejected for an empty or too long title.
    """
    title = " ".join(title.split())
    limit = ChatSession._meta.get_field("title").max_length
    if not title:
        raise Rejected("Give the chat a title.")
    if len(title) > limit:
        raise Rejected(f"A title can be at most {limit} characters long.")
    session.title = title
    # A new name is not activity: the session keeps its place in the list.
    session.save(update_fields=["title"])
    return session


@transaction.atomic
def session_delete(*, session: ChatSession) -> None:
    """Delete the session, its messages and their images, and images uploaded
    in it but not sent.

    Raise Rejected while one of its answers is being written.
    """
    check_idle(session)
    session.delete()  # its images, sent or not, go with it (chat.attachment_files)


def session_set_thinking(*, session: ChatSession, thinking: bool) -> ChatSession:
    session.thinking = thinking
    session.save(update_fields=["thinking"])
    return session


def session_settings_check(
    *,
    session: ChatSession,
    system_prompt: str,
    temperature: float | None,
    top_p: float | None,
    max_new_tokens: int | None,
    preset: Preset | None = None,
) -> None:
    """Raise Rejected for a setting `session_configure` would refuse: a value
    outside the server's bounds, a temperature or top-p while the server has locked
    them, or another user's preset."""
    bounds = generation_settings.bounds()
    system_prompt = system_prompt.strip()
    if len(system_prompt) > bounds.max_system_prompt:
        raise Rejected(
            f"The system prompt is {len(system_prompt):,} characters long; the limit is "
            f"{bounds.max_system_prompt:,}."
        )
    if bounds.sampling_locked and (temperature is not None or top_p is not None):
        raise Rejected("This server sets temperature and top-p; they cannot be changed.")
    if temperature is not None and not (
        bounds.min_temperature <= temperature <= bounds.max_temperature
    ):
        raise Rejected(
            f"Temperature must be from {bounds.min_temperature:g} to {bounds.max_temperature:g}."
        )
    if top_p is not None and not (0 < top_p <= bounds.max_top_p):
        raise Rejected(f"Top-p must be above 0 and at most {bounds.max_top_p:g}.")
    if max_new_tokens is not None and not (1 <= max_new_tokens <= bounds.max_new_tokens):
        raise Rejected(
            f"Max tokens must be from 1 to {bounds.max_new_tokens:,} (the context length)."
        )
    if preset is not None and preset.owner_id not in (None, session.owner_id):
        raise Rejected("That preset is not available.")


def session_configure(
    *,
    session: ChatSession,
    system_prompt: str,
    temperature: float | None,
    top_p: float | None,
    max_new_tokens: int | None,
    preset: Preset | None = None,
) -> ChatSession:
    """Save the session's preset, system prompt and generation settings (None: server default).

    Raise Rejected, changing nothing, for what session_settings_check refuses.
    """
    session_settings_check(
        session=session,
        system_prompt=system_prompt,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        preset=preset,
    )
    session.preset = preset
    session.system_prompt = system_prompt.strip()
    fields = ["preset", "system_prompt", "max_new_tokens"]
    session.max_new_tokens = max_new_tokens
    if not generation_settings.bounds().sampling_locked:
        session.temperature, session.top_p = temperature, top_p
        fields += ["temperature", "top_p"]
    session.save(update_fields=fields)
    return session
