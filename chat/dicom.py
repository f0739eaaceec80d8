"""DICOM uploads: single images, whole series and multi-frame files, read with pydicom.

Two steps, each a plain function:

- `read_series(files)` reads the headers, groups the frames into series (by
  SeriesInstanceUID) and puts each series in order: by InstanceNumber when every
  frame has its own, otherwise by ImagePositionPatient along the slice normal,
  otherwise as the files came.
- `render_series(series, picked, window)` decodes the picked frames, applies the
  modality LUT (rescale slope/intercept: CT becomes Hounsfield units) and a
  window, and returns each as a PNG with a label and its de-identified facts.
  `sample_evenly(count, limit)` picks the frames when a series is too long.

De-identification is by allow-list: the facts kept are built from the few tags
the model needs (modality, body part, thickness, spacing, instance number, the
window used, and a series description only when it names nobody). Nothing
else of a header leaves this module, and the image is a PNG encoded from the
pixels alone, so no DICOM header is stored at all.

CT follows Google's MedGemma 1.5 CT notebook (high_dimensional_ct_hugging_face):
by default each slice is windowed three ways into the red, green and blue
channels (wide -1024..1024 HU, soft tissue -135..215 HU, brain 0..80 HU), the
encoding MedGemma 1.5 was trained with; it looks coloured to a person. A preset
(lung, mediastinum, bone, brain) gives one grayscale window instead. Other
modalities (MR, radiographs) use the window their file names (WindowCenter/
WindowWidth), or else one range for the whole series (its 0.5th to 99.5th
percentile); MONOCHROME1 is shown inverted, colour images as they are. Unlike
the notebook, which samples 85 slices, the number sent is what fits the
model's context and the per-message image limit, first and last slice included.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pydicom
from PIL import Image
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut

from chat import person_names
from chat.dicom_codecs import PixelDataUndecodable, decode_frame
from chat.dicom_windows import AUTO, MEDGEMMA_CT_WINDOWS, PRESETS, Window, window_label
from chat.errors import MessageRejected
from chat.images import MAX_PIXELS


class DicomRejected(MessageRejected):
    """A DICOM file or series that cannot be attached as it is."""


# Where an enhanced multi-frame file keeps a tag per frame or for all frames.
_FUNCTIONAL_GROUP = {
    "ImagePositionPatient": "PlanePositionSequence",
    "ImageOrientationPatient": "PlaneOrientationSequence",
    "PixelSpacing": "PixelMeasuresSequence",
    "SliceThickness": "PixelMeasuresSequence",
    "SpacingBetweenSlices": "PixelMeasuresSequence",
    "WindowCenter": "FrameVOILUTSequence",
    "WindowWidth": "FrameVOILUTSequence",
    "RescaleSlope": "PixelValueTransformationSequence",
    "RescaleIntercept": "PixelValueTransformationSequence",
}
# Values that identify someone; a series description (or body part) holding any
# part of one is dropped (chat.person_names).
_IDENTIFYING = (
    "PatientName",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
    "ResponsiblePerson",
    "PatientID",
    "OtherPatientIDs",
    "PatientBirthDate",
    "PatientAddress",
    "AccessionNumber",
    "StudyID",
    "InstitutionName",
    "InstitutionAddress",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "PhysiciansOfRecord",
    "NameOfPhysiciansReadingStudy",
    "RequestingPhysician",
    "OperatorsName",
)
_LONG_NUMBER = re.compile(r"\d{6,}")  # a date, a record or accession number
_LABEL_LENGTH = 200  # Attachment.label's max_length
SUFFIXES = (".dcm", ".dicom")  # a file so named is read as DICOM even without "DICM"


@dataclass(frozen=True)
class DicomFile:
    """One uploaded DICOM file, read on demand. `name` appears in messages only."""

    name: str
    read: Callable[[], bytes]
    force: bool = False  # read it without the "DICM" preamble (an uploaded .dcm file)


@dataclass(frozen=True)
class Frame:
    """One 2-D image of a series: a frame of one file, known from its header."""

    file: DicomFile
    index: int  # the frame within its file, from 0
    frames_in_file: int
    instance_number: int | None
    position: tuple[float, float, float] | None
    normal: tuple[float, float, float] | None
    windowed: bool  # the file names a window for this frame


@dataclass
class Series:
    """The frames of one series, in order, and the facts kept about it."""

    uid: str
    number: int | None
    facts: dict
    frames: list[Frame] = field(default_factory=list)

    @property
    def modality(self) -> str:
        return self.facts.get("modality", "")

    def describe(self) -> str:
        """Say which series this is, for messages: "CT series (AX LUNG)"."""
        what = f"{self.modality} series" if self.modality else "The series"
        description = self.facts.get("series_description")
        return f"{what} ({description})" if description else what


@dataclass(frozen=True)
class RenderedSlice:
    png: bytes
    width: int
    height: int
    label: str
    facts: dict


def is_dicom(raw: bytes) -> bool:
    """Whether `raw` starts as a DICOM file does (128 bytes, then "DICM")."""
    return raw[128:132] == b"DICM"


def read_series(files: Iterable[DicomFile]) -> tuple[list[Series], list[str]]:
    """Read the headers of `files`; return their series, each in order, and the
    problems of the files left out (one sentence each)."""
    by_uid: dict[str, Series] = {}
    problems = []
    for file in files:
        try:
            dataset = _read(file)
            _check_image(dataset, file.name)
        except DicomRejected as rejected:
            problems.append(str(rejected))
            continue
        uid = str(dataset.get("SeriesInstanceUID") or f"file:{file.name}")
        series = by_uid.get(uid)
        if series is None:
            series = by_uid[uid] = Series(uid, _int(dataset.get("SeriesNumber")), _facts(dataset))
        series.frames.extend(_frames(dataset, file))
    for series in by_uid.values():
        series.frames = order_frames(series.frames)
    ordered = sorted(by_uid.values(), key=lambda s: (s.number is None, s.number or 0))
    return ordered, problems


def order_frames(frames: list[Frame]) -> list[Frame]:
    """Put a series' frames in order: by InstanceNumber (then frame) when each
    frame has its own, otherwise by position along the slice normal, otherwise
    as they came."""
    numbers = [(f.instance_number, f.index) for f in frames]
    if all(n is not None for n, _ in numbers) and len(set(numbers)) == len(numbers):
        return sorted(frames, key=lambda f: (f.instance_number, f.index))
    normal = next((f.normal for f in frames if f.normal), None)
    if normal and all(f.position for f in frames):
        return sorted(frames, key=lambda f: (float(np.dot(f.position, normal)), f.index))
    return list(frames)


def sample_evenly(count: int, limit: int) -> list[int]:
    """Return the indexes of at most `limit` of `count` items, evenly spaced,
    the first and the last among them (the middle one when `limit` is 1)."""
    if count <= limit:
        return list(range(count))
    if limit <= 0:
        return []
    if limit == 1:
        return [count // 2]
    steps = limit - 1
    return [(i * (count - 1) + steps // 2) // steps for i in range(limit)]


def render_series(series: Series, picked: list[int], window: str = AUTO) -> list[RenderedSlice]:
    """Decode and window the frames of `series` at the indexes `picked`.

    `window` is AUTO, FILE or a key of PRESETS; presets apply to CT only (other
    modalities use their own window). Raise DicomRejected for pixel data that
    cannot be decoded.
    """
    is_ct = series.modality == "CT"
    fixed = PRESETS.get(window) if is_ct else None
    rgb = is_ct and window == AUTO
    fallback = None
    if not (fixed or rgb) and not all(series.frames[i].windowed for i in picked):
        # Frames without a window of their own share one over the series' range.
        fallback = _range_window(series, picked)
    total = len(series.frames)
    rendered = []
    for position, (frame, pixels) in zip(picked, _decoded(series, picked), strict=True):
        if pixels.colour:
            image, used = pixels.values, {"name": "colour"}
        elif rgb:
            image = np.stack([w.apply(pixels.values) for w in MEDGEMMA_CT_WINDOWS], axis=-1)
            used = {"name": "medgemma-ct-rgb", "channels": [w.facts() for w in MEDGEMMA_CT_WINDOWS]}
        else:
            chosen = fixed or pixels.file_window or fallback
            image, used = chosen.apply(pixels.values), chosen.facts()
            if pixels.inverted:  # MONOCHROME1: low values are shown white
                image = 255 - image
        facts = dict(series.facts, window=used, slice=position + 1, slices=total)
        if frame.instance_number is not None:
            facts["instance_number"] = frame.instance_number
        if frame.frames_in_file > 1:
            facts["frame"] = frame.index + 1
        picture = Image.fromarray(image)
        out = io.BytesIO()
        picture.save(out, format="PNG")  # pixels only: no text chunks, nothing of the header
        rendered.append(
            RenderedSlice(out.getvalue(), picture.width, picture.height, _label(facts), facts)
        )
    return rendered


# --- reading headers


def _read(file: DicomFile) -> pydicom.Dataset:
    try:
        raw = file.read()
        dataset = pydicom.dcmread(io.BytesIO(raw), force=file.force)
    except Exception:  # pydicom (and a damaged zip) raise many kinds of errors
        raise DicomRejected(f"{file.name} could not be read as DICOM.") from None
    if not is_dicom(raw) and "SOPClassUID" not in dataset and "PixelData" not in dataset:
        # Read by force, any bytes pass for a dataset: without these it is none.
        raise DicomRejected(f"{file.name} could not be read as DICOM.")
    return dataset


def _check_image(dataset: pydicom.Dataset, name: str) -> None:
    if "PixelData" not in dataset or not dataset.get("Rows") or not dataset.get("Columns"):
        raise DicomRejected(f"{name} holds no image (a report, a directory or a broken file).")
    if dataset.Rows * dataset.Columns > MAX_PIXELS:
        raise DicomRejected(f"{name} has too many pixels ({dataset.Columns}×{dataset.Rows}).")
    if str(dataset.get("BurnedInAnnotation", "")).upper() == "YES":
        # Names burned into the pixels cannot be taken out here.
        raise DicomRejected(
            f"{name} says it has patient details burned into the image, so it was not "
            "stored; export it without annotations."
        )


def _frames(dataset: pydicom.Dataset, file: DicomFile) -> Iterator[Frame]:
    count = max(1, _int(dataset.get("NumberOfFrames")) or 1)
    instance = _int(dataset.get("InstanceNumber"))
    for index in range(count):
        position = _floats(_value(dataset, "ImagePositionPatient", index), 3)
        orientation = _floats(_value(dataset, "ImageOrientationPatient", index), 6)
        windowed = _value(dataset, "WindowWidth", index) is not None
        yield Frame(file, index, count, instance, position, _normal(orientation), windowed)


def _facts(dataset: pydicom.Dataset) -> dict:
    """The facts kept about a series: an allow-list, nothing that names anyone."""
    facts = {}
    modality = str(dataset.get("Modality") or "").strip().upper()
    if re.fullmatch(r"[A-Z]{1,4}", modality):
        facts["modality"] = modality
    body_part = str(dataset.get("BodyPartExamined") or "").strip().upper()
    if re.fullmatch(r"[A-Z ]{1,16}", body_part) and not _names_anyone(body_part, dataset):
        facts["body_part"] = body_part
    description = _series_description(dataset)
    if description:
        facts["series_description"] = description
    thickness = _floats(_value(dataset, "SliceThickness"), 1)
    if thickness:
        facts["slice_thickness_mm"] = round(thickness[0], 3)
    spacing = _floats(_value(dataset, "PixelSpacing"), 2)
    if spacing:
        facts["pixel_spacing_mm"] = [round(v, 4) for v in spacing]
    between = _floats(_value(dataset, "SpacingBetweenSlices"), 1)
    if between:
        facts["spacing_between_slices_mm"] = round(between[0], 3)
    return facts


def _series_description(dataset: pydicom.Dataset) -> str:
    """The series description ("AX T2 FLAIR"), or "" when it may name someone."""
    text = " ".join(str(dataset.get("SeriesDescription") or "").split())[:64]
    if not text or _LONG_NUMBER.search(text) or _names_anyone(text, dataset):
        return ""
    return text


def _names_anyone(text: str, dataset: pydicom.Dataset) -> bool:
    """Whether `text` holds any part of a name, ID or address the header carries."""
    values = []
    for keyword in _IDENTIFYING:
        value = dataset.get(keyword)
        values += value if isinstance(value, list | tuple | MultiValue) else [value]
    return person_names.mentions_any(text, (str(v) for v in values if v not in (None, "")))


def _value(dataset: pydicom.Dataset, keyword: str, frame: int = 0):
    """A tag's value for one frame: from the frame's own functional group, the
    shared one, or the top level (an enhanced multi-frame file keeps them apart)."""
    group = _FUNCTIONAL_GROUP.get(keyword)
    if group:
        for sequence, item in (
            ("PerFrameFunctionalGroupsSequence", frame),
            ("SharedFunctionalGroupsSequence", 0),
        ):
            groups = dataset.get(sequence)
            if groups and len(groups) > item:
                inner = groups[item].get(group)
                if inner and inner[0].get(keyword) not in (None, ""):
                    return inner[0].get(keyword)
    value = dataset.get(keyword)
    return None if value in (None, "") else value


def _floats(value, count: int) -> tuple[float, ...] | None:
    if value is None:
        return None
    values = list(value) if isinstance(value, list | tuple | MultiValue) else [value]
    try:
        numbers = tuple(float(v) for v in values[:count])
    except (TypeError, ValueError):
        return None
    return numbers if len(numbers) == count and all(np.isfinite(numbers)) else None


def _int(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _normal(orientation: tuple[float, ...] | None) -> tuple[float, float, float] | None:
    if orientation is None:
        return None
    normal = np.cross(orientation[:3], orientation[3:])
    length = float(np.linalg.norm(normal))
    return tuple(float(v) for v in normal / length) if length > 1e-6 else None


# --- decoding pixels


@dataclass(frozen=True)
class _Pixels:
    values: np.ndarray  # grayscale: float32 after the modality LUT; colour: uint8 RGB
    colour: bool
    inverted: bool  # MONOCHROME1
    file_window: Window | None


def _decoded(series: Series, picked: list[int]) -> Iterator[tuple[Frame, _Pixels]]:
    """Decode the picked frames one by one, reading each file once."""
    current: tuple[DicomFile, pydicom.Dataset] | None = None
    for position in picked:
        frame = series.frames[position]
        if current is None or current[0] is not frame.file:
            current = (frame.file, _read(frame.file))
        yield frame, _pixels(current[1], frame)


def _pixels(dataset: pydicom.Dataset, frame: Frame) -> _Pixels:
    index = frame.index if frame.frames_in_file > 1 else None
    try:
        array = decode_frame(dataset, index, frame.file.name)
    except PixelDataUndecodable as undecodable:
        raise DicomRejected(str(undecodable)) from None
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric == "PALETTE COLOR":
        array = apply_color_lut(array, dataset)
        return _Pixels(_to_8_bits(array, 16 if array.dtype.itemsize > 1 else 8), True, False, None)
    if array.ndim == 3:  # RGB (YBR is converted to RGB as it is decoded)
        return _Pixels(_to_8_bits(array, int(dataset.get("BitsStored", 8))), True, False, None)
    if "ModalityLUTSequence" in dataset:
        values = apply_modality_lut(array, dataset).astype(np.float32)
    else:
        slope = _floats(_value(dataset, "RescaleSlope", frame.index), 1) or (1.0,)
        intercept = _floats(_value(dataset, "RescaleIntercept", frame.index), 1) or (0.0,)
        values = array.astype(np.float32) * slope[0] + intercept[0]
    return _Pixels(values, False, photometric == "MONOCHROME1", _file_window(dataset, frame))


def _file_window(dataset: pydicom.Dataset, frame: Frame) -> Window | None:
    center = _first_float(_value(dataset, "WindowCenter", frame.index))
    width = _first_float(_value(dataset, "WindowWidth", frame.index))
    if center is None or width is None or width <= 0:
        return None
    return Window.centred("file", center, width)


def _first_float(value) -> float | None:
    if isinstance(value, list | tuple | MultiValue):
        value = value[0] if len(value) else None  # several windows: the first is the default
    numbers = _floats(value, 1)
    return numbers[0] if numbers else None


def _range_window(series: Series, picked: list[int]) -> Window:
    """A window over the values of the picked frames (0.5th to 99.5th percentile),
    so that slices of one series are shown alike."""
    lows, highs = [], []
    for _, pixels in _decoded(series, picked):
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
    return f"{text} ({window_label(facts)})"[:_LABEL_LENGTH]
