"""DICOM uploads: single images, whole series and multi-frame files, read with pydicom.

Two steps, each a plain function (this module reads; imaging.dicom.render renders):

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

import datetime
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pydicom
from pydicom.multival import MultiValue

from imaging import person_names
from imaging.errors import ImageRejected
from imaging.images import MAX_PIXELS
from imaging.priors import dicom_date


class DicomRejected(ImageRejected):
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
# part of one is dropped (imaging.person_names).
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
# A date written with separators ("15/01/2023", "2023-01-15", "15.1.23"): a date
# of service identifies a patient, so a description holding one is dropped.
_DATE = re.compile(r"\d{1,4}\s*[-/.]\s*\d{1,2}\s*[-/.]\s*\d{2,4}")
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
    # When it was taken: only to tell a prior study from the current one
    # (imaging.priors); never in `facts`, never stored, shown or sent.
    taken: datetime.date | None = None

    @property
    def modality(self) -> str:
        return self.facts.get("modality", "")

    def describe(self) -> str:
        """Say which series this is, for messages: "CT series (AX LUNG)"."""
        what = f"{self.modality} series" if self.modality else "The series"
        description = self.facts.get("series_description")
        return f"{what} ({description})" if description else what


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
            dataset = read_dataset(file)
            _check_image(dataset, file.name)
        except DicomRejected as rejected:
            problems.append(str(rejected))
            continue
        uid = str(dataset.get("SeriesInstanceUID") or f"file:{file.name}")
        series = by_uid.get(uid)
        if series is None:
            series = by_uid[uid] = Series(
                uid, _int(dataset.get("SeriesNumber")), _facts(dataset), taken=dicom_date(dataset)
            )
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


# --- reading headers


def read_dataset(file: DicomFile) -> pydicom.Dataset:
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
        position = floats(tag_value(dataset, "ImagePositionPatient", index), 3)
        orientation = floats(tag_value(dataset, "ImageOrientationPatient", index), 6)
        windowed = tag_value(dataset, "WindowWidth", index) is not None
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
    thickness = floats(tag_value(dataset, "SliceThickness"), 1)
    if thickness:
        facts["slice_thickness_mm"] = round(thickness[0], 3)
    spacing = floats(tag_value(dataset, "PixelSpacing"), 2)
    if spacing:
        facts["pixel_spacing_mm"] = [round(v, 4) for v in spacing]
    between = floats(tag_value(dataset, "SpacingBetweenSlices"), 1)
    if between:
        facts["spacing_between_slices_mm"] = round(between[0], 3)
    return facts


def _series_description(dataset: pydicom.Dataset) -> str:
    """The series description ("AX T2 FLAIR"), or "" when it may name someone."""
    text = " ".join(str(dataset.get("SeriesDescription") or "").split())[:64]
    if not text or _LONG_NUMBER.search(text) or _DATE.search(text) or _names_anyone(text, dataset):
        return ""
    return text


def _names_anyone(text: str, dataset: pydicom.Dataset) -> bool:
    """Whether `text` holds any part of a name, ID or address the header carries."""
    values = []
    for keyword in _IDENTIFYING:
        value = dataset.get(keyword)
        values += value if isinstance(value, list | tuple | MultiValue) else [value]
    return person_names.mentions_any(text, (str(v) for v in values if v not in (None, "")))


def tag_value(dataset: pydicom.Dataset, keyword: str, frame: int = 0):
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


def floats(value, count: int) -> tuple[float, ...] | None:
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
