"""Writes of task presets: the built-in ones kept in step with the code, users' own."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from chat.builtin_presets import BUILTIN_PRESETS
from chat.errors import Rejected
from chat.models import Preset

NAME_LENGTH = 100


def sync_builtin_presets() -> None:
    """Create the built-in presets, and raise the version of any whose text changed."""
    for builtin in BUILTIN_PRESETS:
        preset, created = Preset.objects.get_or_create(
            key=builtin.key,
            defaults={
                "name": builtin.name,
                "description": builtin.description,
                "system_prompt": builtin.system_prompt,
            },
        )
        if created:
            continue
        changed = preset.system_prompt != builtin.system_prompt
        if changed or (preset.name, preset.description) != (builtin.name, builtin.description):
            preset.name, preset.description = builtin.name, builtin.description
            preset.system_prompt = builtin.system_prompt
            preset.version += int(changed)
            preset.save()


def preset_check(name: str, system_prompt: str, max_length: int) -> tuple[str, str]:
    """Return the name and instructions as a preset keeps them; raise Rejected
    when one is missing or too long."""
    name, system_prompt = " ".join(name.split()), system_prompt.strip()
    if not name:
        raise Rejected("Give the preset a name.")
    if len(name) > NAME_LENGTH:
        raise Rejected(f"A preset's name can be at most {NAME_LENGTH} characters.")
    if not system_prompt:
        raise Rejected("Write the preset's instructions.")
    if len(system_prompt) > max_length:
        raise Rejected(
            f"The instructions are {len(system_prompt):,} characters long; the limit is "
            f"{max_length:,}."
        )
    return name, system_prompt


@transaction.atomic
def preset_save(
    *, owner, name: str, system_prompt: str, max_length: int, preset: Preset | None = None
) -> Preset:
    """Create `owner`'s preset, or change `preset` (theirs), raising its version.

    Raise Rejected when the name or instructions are missing or too long,
    or the owner already has a preset of that name.
    """
    name, system_prompt = preset_check(name, system_prompt, max_length)
    if preset is None:
        preset = Preset(owner=owner)
    elif preset.owner_id != owner.pk:
        raise Rejected("Only your own presets can be changed.")
    elif preset.system_prompt != system_prompt:
        preset.version += 1
    preset.name, preset.system_prompt = name, system_prompt
    try:
        with transaction.atomic():
            preset.save()
    except IntegrityError:
        raise Rejected(f"You already have a preset called “{name}”.") from None
    return preset


def preset_delete(*, owner, preset: Preset) -> None:
    """Delete `owner`'s own preset; sessions using it keep their own instructions."""
    if preset.owner_id != owner.pk:
        raise Rejected("Only your own presets can be deleted.")
    preset.delete()
