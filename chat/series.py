"""Reads of kept DICOM series (imaging.dicom.volume, Attachment.volume): what the
viewer is given, and how the composer shows a series' slices with their range.

The viewer (static/js/series-viewer.js) first reads `viewer_facts` (JSON: the
series' size, each slice's width, height, slope and intercept, the window the
model got, which slices the message carries), then the slices it shows, each
as `slice_bytes`: the kept int16 values, little-endian, row by row. Both are
served to the attachment's owner only, never cached (chat.views).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePath

from chat import generation_settings, serving
from chat.models import Attachment, ChatSession
from imaging.dicom.volume import Volume, VolumeFacts
from imaging.dicom.windows import PRESETS


def slices_that_fit(session: ChatSession) -> int:
    """How many slices one message of `session` can carry, with nothing else in it."""
    answer_tokens = generation_settings.sampling_for(session).max_new_tokens
    return max(serving.image_budget().room(answer_tokens, 0), 0)


def series_slices(attachment: Attachment) -> list[Attachment]:
    """The slices of `attachment`'s series that go with it: those of the same
    message, or, while it is pending, the owner's other pending ones."""
    same = Attachment.objects.filter(owner_id=attachment.owner_id, volume=attachment.volume.name)
    if attachment.message_id is None:
        same = same.filter(message__isnull=True, session_id=attachment.session_id)
    else:
        same = same.filter(message_id=attachment.message_id)
    return list(same)


def viewer_facts(attachment: Attachment, facts: VolumeFacts) -> dict:
    """What the viewer needs to show the series of `attachment` (kept as `facts`)."""
    sent = sorted({a.dicom.get("slice", 0) - 1 for a in series_slices(attachment)})
    series = facts.series
    return {
        "modality": series.get("modality", ""),
        "description": series.get("series_description", ""),
        "count": facts.count,
        "slice": attachment.dicom.get("slice", 1) - 1,
        "sent": [n for n in sent if 0 <= n < facts.count],
        "pending": attachment.message_id is None,
        "model_window": attachment.dicom.get("window", {}),
        "presets": {
            name: {"center": (w.low + w.high) / 2, "width": w.high - w.low}
            for name, w in PRESETS.items()
        }
        if series.get("modality") == "CT"
        else {},
        "slices": [
            {
                "width": s.width,
                "height": s.height,
                "slope": s.slope,
                "intercept": s.intercept,
                "inverted": s.inverted,
                "file_window": list(s.file_window) if s.file_window else None,
            }
            for s in facts.slices
        ],
    }


def slice_bytes(volume: Volume, number: int) -> bytes:
    """Slice `number` (from 1) of `volume` as the viewer reads it: int16,
    little-endian, row by row. Raise IndexError outside the series."""
    return volume.stored(number - 1).astype("<i2", copy=False).tobytes()


@dataclass
class PendingSeries:
    """A series' slices in the composer, with the range they were chosen from."""

    key: str  # names the series' group in the page
    attachments: list[Attachment]
    total: int  # slices in the series
    fits: int  # slices one message can carry
    start: int  # the first and last slice chosen, from 1
    end: int
    description: str
    is_series: bool = field(default=True, init=False)

    @property
    def note(self) -> str:
        """What fits, in plain words: "10 of 40 slices fit in one message"."""
        if self.total <= self.fits:
            return f"All {self.total} slices fit in one message."
        return f"{self.fits} of {self.total} slices fit in one message."


def composer_items(attachments: list[Attachment], *, fits: int) -> list:
    """The composer's pending `attachments` in order, the slices of a kept
    series gathered into one PendingSeries (where the first of them was)."""
    items: list = []
    groups: dict[str, PendingSeries] = {}
    for attachment in attachments:
        name = attachment.volume.name
        if not name:
            items.append(attachment)
            continue
        group = groups.get(name)
        if group is None:
            facts = attachment.dicom
            what = f"{facts.get('modality', 'DICOM')} series"
            if facts.get("series_description"):
                what += f", {facts['series_description']}"
            group = groups[name] = PendingSeries(
                key=PurePath(name).stem,
                attachments=[],
                total=int(facts.get("slices", 1)),
                fits=fits,
                start=0,
                end=0,
                description=what,
            )
            items.append(group)
        group.attachments.append(attachment)
    for group in groups.values():
        numbers = [a.dicom.get("slice", 1) for a in group.attachments]
        group.start, group.end = min(numbers), max(numbers)
        group.attachments.sort(key=lambda a: a.dicom.get("slice", 0))
    return items
