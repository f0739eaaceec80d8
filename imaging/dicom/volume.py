"""A whole DICOM series kept for the viewer and for choosing slices again: its values, compressed.

`volume_write(series, out, window=...)` decodes every frame of a grayscale
series once, puts it through the modality LUT (CT becomes Hounsfield units) and
writes the values to `out` as a compressed NumPy archive (.npz, read with
`allow_pickle=False`): one int16 array per slice, and one JSON member of facts.
`Volume.open(file)` reads it back a slice at a time, so that a viewer can show
any slice in any window, and `Volume.render(picked)` renders slices exactly as
imaging.dicom.render would have from the files (the same PNGs, the same labels).

What is kept is de-identified as the rest of imaging.dicom is: the pixel values
(series whose files say names are burned in are refused before this), the
series' allow-listed facts (imaging.dicom.read), and per slice only its size,
its instance and frame numbers, the window its file names and whether it is
MONOCHROME1. No header is stored.

Values are stored as int16 with a slope and intercept per slice (value =
stored × slope + intercept). Whole numbers spanning at most 65,536 (CT in HU,
any 16-bit MR or radiograph) are kept exactly; anything else (a fractional
rescale slope, as PET has) is spread over the 65,536 steps, which a window of
256 shades cannot tell apart.

Colour series (ultrasound, secondary captures) are not windowed, so nothing is
kept for them: `volume_write` raises NotWindowable.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import BinaryIO

import numpy as np

from imaging.dicom.read import Series, sample_evenly
from imaging.dicom.render import (
    Pixels,
    RenderedSlice,
    SlicePlace,
    decoded_frames,
    render_slices,
)
from imaging.dicom.windows import Window

FORMAT = 1  # the layout of the archive's facts; a reader refuses any other
_FACTS = "facts"
_INT16 = np.iinfo(np.int16)


class NotWindowable(ValueError):
    """A series in colour: there are no values to window, so none are kept."""


class VolumeUnreadable(ValueError):
    """A kept volume that is damaged or of an unknown layout."""


@dataclass(frozen=True)
class SliceFacts:
    """What is kept of one slice besides its values."""

    width: int
    height: int
    slope: float  # value = stored × slope + intercept
    intercept: float
    instance_number: int | None
    frame: int | None  # from 1, in a multi-frame file only
    inverted: bool  # MONOCHROME1: low values are shown white
    file_window: tuple[float, float] | None  # (center, width) the file names

    def window(self) -> Window | None:
        if self.file_window is None:
            return None
        return Window.centred("file", *self.file_window)


@dataclass(frozen=True)
class VolumeFacts:
    """The series' allow-listed facts, the window its slices are rendered with
    (imaging.dicom.windows.WINDOW_CHOICES) and each slice's facts, in order."""

    series: dict
    window: str
    slices: tuple[SliceFacts, ...]

    @property
    def count(self) -> int:
        return len(self.slices)

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "series": self.series,
            "window": self.window,
            "slices": [asdict(s) for s in self.slices],
        }

    @classmethod
    def from_json(cls, data: dict) -> VolumeFacts:
        if data.get("format") != FORMAT:
            raise VolumeUnreadable("The kept series is of an unknown layout.")
        slices = []
        for item in data["slices"]:
            window = item.get("file_window")
            slices.append(SliceFacts(**dict(item, file_window=tuple(window) if window else None)))
        return cls(dict(data["series"]), str(data["window"]), tuple(slices))


def volume_write(series: Series, out: BinaryIO, *, window: str) -> VolumeFacts:
    """Decode every frame of `series` and write its values and facts to `out`,
    one slice at a time (a long series is never all in memory as floats).

    `window` is recorded to render its slices with later. Raise NotWindowable
    for a colour series, DicomRejected for pixel data that cannot be decoded.
    """
    slices = []
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for place, pixels in decoded_frames(series, range(len(series.frames))):
            if pixels.colour:
                raise NotWindowable(f"{series.describe()} is in colour.")
            stored, slope, intercept = _to_int16(pixels.values)
            with archive.open(f"{_key(place.position)}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, stored, allow_pickle=False)
            file_window = pixels.file_window
            slices.append(
                SliceFacts(
                    width=int(stored.shape[1]),
                    height=int(stored.shape[0]),
                    slope=slope,
                    intercept=intercept,
                    instance_number=place.instance_number,
                    frame=place.frame,
                    inverted=pixels.inverted,
                    file_window=(
                        (file_window.low + file_window.high) / 2,
                        file_window.high - file_window.low,
                    )
                    if file_window
                    else None,
                )
            )
        facts = VolumeFacts(dict(series.facts), window, tuple(slices))
        encoded = np.frombuffer(json.dumps(facts.to_json()).encode(), dtype=np.uint8)
        with archive.open(f"{_FACTS}.npy", "w") as member:
            np.lib.format.write_array(member, encoded, allow_pickle=False)
    return facts


class Volume:
    """A kept series, read a slice at a time from the archive volume_write wrote."""

    def __init__(self, file: BinaryIO) -> None:
        """Open the archive in `file` (kept open by the caller while this is used).
        Raise VolumeUnreadable when it is not one."""
        try:
            self._archive = np.load(file, allow_pickle=False)
            raw = self._archive[_FACTS].tobytes()
            self.facts = VolumeFacts.from_json(json.loads(raw))
        except VolumeUnreadable:
            raise
        except Exception:  # numpy, zipfile and json each raise their own kinds
            raise VolumeUnreadable("The kept series could not be read.") from None

    @property
    def count(self) -> int:
        return self.facts.count

    def stored(self, index: int) -> np.ndarray:
        """The int16 values of slice `index` (from 0) as kept; value = stored ×
        slope + intercept (self.facts.slices[index]). Raise IndexError outside
        the series, VolumeUnreadable when the slice is damaged."""
        if not 0 <= index < self.count:
            raise IndexError(f"The series has {self.count} slices; there is no slice {index + 1}.")
        try:
            stored = self._archive[_key(index)]
        except Exception:
            raise VolumeUnreadable(f"Slice {index + 1} of the kept series is damaged.") from None
        expected = (self.facts.slices[index].height, self.facts.slices[index].width)
        if stored.dtype != np.int16 or stored.shape != expected:
            raise VolumeUnreadable(f"Slice {index + 1} of the kept series is damaged.")
        return stored

    def values(self, index: int) -> np.ndarray:
        """The values of slice `index` after the modality LUT (HU for CT), float32."""
        kept = self.facts.slices[index]
        return self.stored(index).astype(np.float32) * np.float32(kept.slope) + np.float32(
            kept.intercept
        )

    def render(self, picked: Iterable[int]) -> list[RenderedSlice]:
        """Render the slices at the indexes `picked` in the window kept with the
        series, as imaging.dicom.render.render_series does from the files."""
        picked = list(picked)
        return render_slices(
            self.facts.series, self.count, lambda: self._pixels(picked), window=self.facts.window
        )

    def _pixels(self, picked: list[int]) -> Iterator[tuple[SlicePlace, Pixels]]:
        for index in picked:
            kept = self.facts.slices[index]
            place = SlicePlace(index, kept.instance_number, kept.frame)
            yield place, Pixels(self.values(index), False, kept.inverted, kept.window())


def pick_range(count: int, *, start: int, end: int, limit: int) -> list[int]:
    """The indexes (from 0) of at most `limit` slices evenly spaced from slice
    `start` to slice `end` (numbered from 1, both included) of `count`, both
    ends among them. Raise ValueError, saying why, for a range outside the series."""
    if not 1 <= start <= end <= count:
        raise ValueError(
            f"Choose slices from 1 to {count}, the first no later than the last "
            f"(asked for {start} to {end})."
        )
    if limit < 1:
        raise ValueError("Choose at least one slice.")
    return [start - 1 + i for i in sample_evenly(end - start + 1, limit)]


def _key(index: int) -> str:
    return f"slice{index}"


def _to_int16(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """`values` as int16 with the slope and intercept that give them back: exact
    for whole numbers spanning at most 65,536, else to 1/65,535 of their range."""
    low, high = float(values.min()), float(values.max())
    whole = bool(np.all(values == np.round(values)))
    if whole and low >= _INT16.min and high <= _INT16.max:
        return values.astype(np.int16), 1.0, 0.0
    if whole and high - low <= 65535:
        intercept = low - _INT16.min
        return (values - intercept).astype(np.int16), 1.0, intercept
    slope = (high - low) / 65535 if high > low else 1.0
    intercept = low - _INT16.min * slope
    stored = np.clip(np.round((values - intercept) / slope), _INT16.min, _INT16.max)
    return stored.astype(np.int16), slope, intercept
