"""The slices of DICOM files that one message carries: read, checked, sampled, rendered.

The chat page stores them as attachments (chat.services.attachments); the APIs
hand them to the model as they are (chat.api.message_images). Both give the
model the same pixels and labels, sample a long series the same way, and say
the same things when they do or when a file is left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings

from chat import dicom
from chat.dicom_windows import AUTO, PRESETS, WINDOW_CHOICES
from inference.registry import model_spec_for

# Prompt room kept for the question, the instructions, the chat template and
# the slice labels when working out how many images fit.
TEXT_ALLOWANCE_TOKENS = 512


@dataclass
class Slices:
    """The slices rendered for one message, and what the clinician should be told."""

    rendered: list[dicom.RenderedSlice] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def images_that_fit(answer_tokens: int) -> int:
    """How many images one message can show the model: the context length, less
    room for the answer (`answer_tokens`, at most half the context) and
    TEXT_ALLOWANCE_TOKENS, in images of the model's image_tokens each."""
    config = settings.MEDSERVER
    answer = min(answer_tokens, config.max_model_len // 2)
    room = config.max_model_len - answer - TEXT_ALLOWANCE_TOKENS
    return max(0, room // model_spec_for(config.model).image_tokens)


def slices_for_message(
    files: Iterable[dicom.DicomFile],
    *,
    answer_tokens: int,
    other_images: int = 0,
    window: str = AUTO,
) -> Slices:
    """Render the DICOM `files` as the slices one message can carry beside its
    `other_images`: at most what fits the context with room for `answer_tokens`
    and what --max-image-count allows, a longer series sampled evenly.

    `window` is a key of WINDOW_CHOICES (anything else is AUTO). Files that
    cannot be read are left out and said in the notices. Raise DicomRejected
    when none holds an image, when no image fits, or when several series hold
    more images than fit.
    """
    limits = settings.MEDSERVER
    fit = images_that_fit(answer_tokens)
    room = min(fit, limits.max_image_count) - other_images
    all_series, problems = dicom.read_series(files)
    if not all_series:
        raise dicom.DicomRejected(problems[0] if problems else "No DICOM images were found.")
    result = Slices()
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        result.notices.append(f"{len(problems)} file(s) left out: {problems[0]}{more}")
    if room <= 0:
        raise dicom.DicomRejected(_no_room(fit))
    total = sum(len(series.frames) for series in all_series)
    if total > room and len(all_series) > 1:
        listing = "; ".join(f"{s.describe()}: {len(s.frames)}" for s in all_series)
        raise dicom.DicomRejected(
            f"The DICOM files hold {len(all_series)} series, {total} images in all ({listing}), "
            f"and at most {room} fit in one message; upload one series at a time."
        )
    if window not in WINDOW_CHOICES:
        window = AUTO
    for series in all_series:
        picked = dicom.sample_evenly(len(series.frames), room)
        if len(picked) < len(series.frames):
            result.notices.append(
                f"{series.describe()}: {len(series.frames)} slices, {len(picked)} evenly "
                f"spaced attached (the most that {_what_limits(fit)})."
            )
        if window in PRESETS and series.modality != "CT":
            result.notices.append(
                f"Window presets are for CT; {series.describe()} is shown with its own window."
            )
        result.rendered += dicom.render_series(series, picked, window)
    return result


def _what_limits(fit: int) -> str:
    limits = settings.MEDSERVER
    if fit < limits.max_image_count:
        return f"fit in the model's {limits.max_model_len:,}-token context with room for the answer"
    return f"one message may carry, with its other images (at most {limits.max_image_count})"


def _no_room(fit: int) -> str:
    limits = settings.MEDSERVER
    if fit <= 0:
        return (
            f"No image fits in the model's {limits.max_model_len:,}-token context once room "
            "is kept for the answer; lower Max tokens or serve a longer context."
        )
    return f"This message already carries the most images it may ({limits.max_image_count})."
