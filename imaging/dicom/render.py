"""Rendering the picked frames of a DICOM series as PNGs the model and the clinician see.

Pixels are decoded (imaging.dicom.codecs), put through the modality LUT (CT
becomes Hounsfield units) and windowed (imaging.dicom.windows); the PNG holds
the pixels alone, nothing of the header. See imaging.dicom.read for the CT
encoding MedGemma 1.5 was trained with.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pydicom
from PIL import Image
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut

from imaging.dicom.codecs import PixelDataUndecodable, decode_frame
from imaging.dicom.read import (
    DicomFile,
    DicomRejected,
    Frame,
    Series,
    floats,
    read_dataset,
    tag_value,
)
from imaging.dicom.windows import AUTO, MEDGEMMA_CT_WINDOWS, PRESETS, Window, window_label
from imaging.priors import Interval

LABEL_LENGTH = 200  # the longest label a slice gets (Attachment.label's max_length)


@dataclass(frozen=True)
class RenderedSlice:
    png: bytes
    width: int
    height: int
    label: str
    facts: dict
    prior: Interval | None = None  # of a prior study: how long before the current one


def render_series(series: Series, picked: list[int], window: str = AUTO) -> list[RenderedSlice]:
    """Decode and window the frames of `series` at the indexes `picked`.

    `window` is AUTO, FILE or a key of PRESETS; presets apply to CT only (other
    modalities use their own window). Raise DicomRejected for pixel data that
    cannot be decoded.
    """
    return render_slices(
        series.facts, len(series.frames), lambda: decoded_frames(series, picked), window=window
    )


def render_slices(
    facts: dict,
    total: int,
    slices: Callable[[], Iterable[tuple[SlicePlace, Pixels]]],
    *,
    window: str = AUTO,
) -> list[RenderedSlice]:
    """Window the slices `slices()` yields, of a series of `total` with the
    series' `facts`, as render_series does. `slices` is called again when the
    slices need a window over their common range (frames naming none)."""
    is_ct = facts.get("modality") == "CT"
    fixed = PRESETS.get(window) if is_ct else None
    rgb = is_ct and window == AUTO
    fallback = None
    rendered = []
    for place, pixels in slices():
        if pixels.colour:
            image, used = pixels.values, {"name": "colour"}
        elif rgb:
            image = np.stack([w.apply(pixels.values) for w in MEDGEMMA_CT_WINDOWS], axis=-1)
            used = {"name": "medgemma-ct-rgb", "channels": [w.facts() for w in MEDGEMMA_CT_WINDOWS]}
        else:
            if not (fixed or pixels.file_window) and fallback is None:
                # Slices without a window of their own share one over the series' range.
                fallback = _range_window(slices())
            chosen = fixed or pixels.file_window or fallback
            image, used = chosen.apply(pixels.values), chosen.facts()
            if pixels.inverted:  # MONOCHROME1: low values are shown white
                image = 255 - image
        slice_facts = dict(facts, window=used, slice=place.position + 1, slices=total)
        if place.instance_number is not None:
            slice_facts["instance_number"] = place.instance_number
        if place.frame is not None:
            slice_facts["frame"] = place.frame
        picture = Image.fromarray(image)
        out = io.BytesIO()
        picture.save(out, format="PNG")  # pixels only: no text chunks, nothing of the header
        rendered.append(
            RenderedSlice(
                out.getvalue(), picture.width, picture.height, _label(slice_facts), slice_facts
            )
        )
    return rendered


# --- decoding pixels


@dataclass(frozen=True)
class Pixels:
    """One slice's values, ready to be windowed."""

    values: np.ndarray  # grayscale: float32 after the modality LUT; colour: uint8 RGB
    colour: bool
    inverted: bool  # MONOCHROME1
    file_window: Window | None


@dataclass(frozen=True)
class SlicePlace:
    """Where a slice sits: its index in the series (from 0), and the instance
    number and frame (from 1, in a multi-frame file only) it came from."""

    position: int
    instance_number: int | None
    frame: int | None


def decoded_frames(series: Series, picked: Iterable[int]) -> Iterator[tuple[SlicePlace, Pixels]]:
    """Decode the frames of `series` at the indexes `picked`, one by one,
    reading each file once. Raise DicomRejected for undecodable pixel data."""
    current: tuple[DicomFile, pydicom.Dataset] | None = None
    for position in picked:
        frame = series.frames[position]
        if current is None or current[0] is not frame.file:
            current = (frame.file, read_dataset(frame.file))
        yield _place(position, frame), _pixels(current[1], frame)


def _place(position: int, frame: Frame) -> SlicePlace:
    number = frame.index + 1 if frame.frames_in_file > 1 else None
    return SlicePlace(position, frame.instance_number, number)


def _pixels(dataset: pydicom.Dataset, frame: Frame) -> Pixels:
    index = frame.index if frame.frames_in_file > 1 else None
    try:
        array = decode_frame(dataset, index, frame.file.name)
    except PixelDataUndecodable as undecodable:
        raise DicomRejected(str(undecodable)) from None
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric == "PALETTE COLOR":
        array = apply_color_lut(array, dataset)
        return Pixels(_to_8_bits(array, 16 if array.dtype.itemsize > 1 else 8), True, False, None)
    if array.ndim == 3:  # RGB (YBR is converted to RGB as it is decoded)
        return Pixels(_to_8_bits(array, int(dataset.get("BitsStored", 8))), True, False, None)
    if "ModalityLUTSequence" in dataset:
        values = apply_modality_lut(array, dataset).astype(np.float32)
    else:
        slope = floats(tag_value(dataset, "RescaleSlope", frame.index), 1) or (1.0,)
        intercept = floats(tag_value(dataset, "RescaleIntercept", frame.index), 1) or (0.0,)
        values = array.astype(np.float32) * slope[0] + intercept[0]
    return Pixels(values, False, photometric == "MONOCHROME1", _file_window(dataset, frame))


def _file_window(dataset: pydicom.Dataset, frame: Frame) -> Window | None:
    center = _first_float(tag_value(dataset, "WindowCenter", frame.index))
    width = _first_float(tag_value(dataset, "WindowWidth", frame.index))
    if center is None or width is None or width <= 0:
        return None
    return Window.centred("file", center, width)


def _first_float(value) -> float | None:
    if isinstance(value, list | tuple | MultiValue):
        value = value[0] if len(value) else None  # several windows: the first is the default
    numbers = floats(value, 1)
    return numbers[0] if numbers else None


def _range_window(slices: Iterable[tuple[SlicePlace, Pixels]]) -> Window:
    """A window over the values of `slices` (0.5th to 99.5th percentile), so
    that slices of one series are shown alike."""
    lows, highs = [], []
    for _, pixels in slices:
        if not pixels.colour:
            low, high = np.percentile(pixels.values, (0.5, 99.5))
            lows.append(float(low))
            highs.append(float(high))
    low, high = (min(lows), max(highs)) if lows else (0.0, 1.0)
    return Window("range", low, high if high > low else low + 1.0)


def _to_8_bits(array: np.ndarray, bits: int) -> np.ndarray:
    if bits <= 8:
        return array.astype(np.uint8)
    return np.round(array.astype(np.float32) * (255.0 / (2**bits - 1))).astype(np.uint8)


def _label(facts: dict) -> str:
    """What the clinician and the model read with a slice: "CT slice 12 of 120, AX
    LUNG (lung window)"."""
    modality = facts.get("modality", "DICOM")
    if facts["slices"] > 1:
        text = f"{modality} slice {facts['slice']} of {facts['slices']}"
    else:
        text = f"{modality} image"
    if facts.get("series_description"):
        text += f", {facts['series_description']}"
    return f"{text} ({window_label(facts)})"[:LABEL_LENGTH]
