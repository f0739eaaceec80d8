"""Writes of DICOM series in the composer: a series' slices stored with the whole
series kept, and the slices a message carries chosen again before it is sent.

An uploaded series becomes as many slices as fit in one message, evenly spaced
(imaging.dicom.slices), each an attachment with its PNG and label. The values
of every slice of the series (after the modality LUT: Hounsfield units for CT)
are kept once, compressed (imaging.dicom.volume), in a file the series' slices
share (Attachment.volume): the viewer windows any slice from it, and the
clinician may choose another range before sending (`series_slices_choose`),
the slices then rendered again from it. A colour series keeps nothing more
than its slices (there is nothing to window).
"""

from __future__ import annotations

import dataclasses
import tempfile
import uuid
from dataclasses import dataclass, field

from django.core.files import File
from django.db import transaction

from chat import generation_settings, serving
from chat.errors import Rejected
from chat.models import Attachment, ChatSession
from chat.services.rendered_images import rendered_attachment
from imaging import ImageRejected
from imaging.dicom import DicomFile, RenderedSlice, render_series
from imaging.dicom.slices import series_for_message
from imaging.dicom.volume import NotWindowable, Volume, VolumeUnreadable, pick_range, volume_write
from imaging.dicom.windows import AUTO, WINDOW_CHOICES

# A series' values up to this size are written in memory, beyond it to a temporary file.
_IN_MEMORY_BYTES = 64 * 1024 * 1024


@dataclass
class StoredSeries:
    """The slices stored for a series (or several), and what the clinician should be told."""

    attachments: list[Attachment] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def series_create(
    *, owner, session: ChatSession, files: list[DicomFile], window: str, other_images: int
) -> StoredSeries:
    """Store the DICOM `files` as the slices that fit in a message of `session`
    beside `other_images`, rendered with `window` (WINDOW_CHOICES; anything
    else is AUTO), each series kept whole for the viewer and for choosing again.

    Raise ImageRejected (imaging.dicom.slices.series_for_message) when none fits.
    """
    answer_tokens = generation_settings.sampling_for(session).max_new_tokens
    budget = serving.image_budget()
    found = series_for_message(
        files, budget=budget, answer_tokens=answer_tokens, other_images=other_images
    )
    window = window if window in WINDOW_CHOICES else AUTO
    result = StoredSeries(notices=list(found.notices))
    for number, series, picked, notices in found.picks(
        window=window, budget=budget, answer_tokens=answer_tokens
    ):
        result.notices += notices
        # One batch per series: a series is marked as a prior study at once.
        batch = uuid.uuid4()
        with tempfile.SpooledTemporaryFile(max_size=_IN_MEMORY_BYTES) as kept:
            try:
                volume_write(series, kept, window=window)
            except (NotWindowable, ImageRejected) as not_kept:
                # The slices sent are stored still (a damaged slice not among
                # them does not stop them), only not the whole series.
                rendered = found.with_prior(number, render_series(series, picked, window))
                result.attachments += _slices_store(owner, session, rendered, batch=batch)
                if isinstance(not_kept, ImageRejected):
                    result.notices.append(
                        f"{series.describe()} could not be kept whole for the viewer "
                        f"({not_kept}); its slices are attached as they are."
                    )
                continue
            kept.seek(0)
            rendered = found.with_prior(number, Volume(kept).render(picked))
            kept.seek(0)
            stored = _slices_store(owner, session, rendered, volume=File(kept), batch=batch)
            result.attachments += stored
    return result


@dataclass(frozen=True)
class ChosenSlices:
    """The slices a series now sends, and the volume they share."""

    attachments: list[Attachment]
    volume: str


def series_slices_choose(
    *,
    owner,
    session: ChatSession,
    attachment_id,
    start: int,
    end: int,
    count: int,
    composer_ids=(),
) -> ChosenSlices:
    """Replace the pending slices of the series that the pending attachment
    `attachment_id` of `owner` belongs to by `count` slices evenly spaced from
    slice `start` to slice `end` (numbered from 1, both sent), rendered from the
    kept series in the window it was uploaded with.

    `composer_ids` are the attachments the composer holds: those of other
    series or images count against what fits in one message. Raise
    Rejected, changing nothing, for an attachment that is not a pending
    slice of a kept series, a range outside the series, or more slices than fit.
    """
    attachment = _pending_slice(owner, session, attachment_id)
    with attachment.volume.open("rb") as kept:
        try:
            volume = Volume(kept)
        except VolumeUnreadable as unreadable:
            raise Rejected(str(unreadable)) from None
        others = _other_pending(owner, composer_ids, attachment.volume.name)
        budget = serving.image_budget()
        answer_tokens = generation_settings.sampling_for(session).max_new_tokens
        room = budget.room(answer_tokens, others)
        if count > room:
            plural = "s" if others != 1 else ""
            beside = f" beside the {others} other image{plural}" if others else ""
            raise Rejected(
                f"At most {max(room, 0)} slices fit in one message{beside} (the most that "
                f"{budget.what_limits(answer_tokens)}); choose {max(room, 0)} or fewer."
            )
        try:
            picked = pick_range(volume.count, start=start, end=end, limit=count)
            rendered = volume.render(picked)
        except (ValueError, ImageRejected) as wrong:
            raise Rejected(str(wrong)) from None
    name = attachment.volume.name
    with transaction.atomic():
        # Replaced, not kept beside: the message carries the chosen slices only.
        Attachment.objects.filter(
            owner=owner, session=session, message__isnull=True, volume=name
        ).delete()
        # The chosen slices stay the study they were (prior or current).
        if prior := attachment.prior:
            rendered = [dataclasses.replace(piece, prior=prior) for piece in rendered]
        stored = _slices_store(owner, session, rendered, volume_name=name, batch=attachment.batch)
    return ChosenSlices(stored, name)


def _pending_slice(owner, session: ChatSession, attachment_id) -> Attachment:
    try:
        pk = uuid.UUID(str(attachment_id))
    except ValueError:
        pk = None
    attachment = (
        Attachment.objects.filter(owner=owner, session=session, message__isnull=True, pk=pk)
        .exclude(volume="")
        .first()
    )
    if attachment is None:
        raise Rejected(
            "These slices were sent or removed already; upload the series again to choose others."
        )
    return attachment


def _other_pending(owner, composer_ids, volume: str) -> int:
    """How many of the composer's attachments (`composer_ids`) are not of the series `volume`."""
    wanted = []
    for value in list(composer_ids)[:1000]:
        try:
            wanted.append(uuid.UUID(str(value)))
        except ValueError:
            continue  # a stale or forged id counts for nothing
    pending = Attachment.objects.filter(owner=owner, pk__in=wanted, message__isnull=True)
    return pending.exclude(volume=volume).count()


def _slices_store(
    owner,
    session: ChatSession,
    rendered: list[RenderedSlice],
    *,
    volume: File | None = None,
    volume_name: str = "",
    batch: uuid.UUID | None = None,
) -> list[Attachment]:
    """Store `rendered` as pending attachments, sharing the kept series: a new
    `volume` file (saved once), or the stored one named `volume_name`."""
    stored = []
    with transaction.atomic():
        for piece in rendered:
            attachment = rendered_attachment(
                owner=owner,
                session=session,
                png=piece.png,
                size=(piece.width, piece.height),
                label=piece.label,
                filename="slice.png",
                save=False,
                dicom=piece.facts,
                batch=batch,
                prior_amount=piece.prior.amount if piece.prior else None,
                prior_unit=piece.prior.unit if piece.prior else "",
            )
            if volume is not None and not volume_name:
                attachment.volume.save("series.npz", volume, save=False)
                volume_name = attachment.volume.name
            else:
                attachment.volume.name = volume_name
            attachment.save()
            stored.append(attachment)
    return stored
