"""Real DICOM files for tests, written with pydicom: CT slices and series (Hounsfield
units stored with a rescale intercept of -1024), MR slices, an enhanced multi-frame
CT file, zips of them, and the patient details a PACS export carries."""

from __future__ import annotations

import io
import zipfile

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    CTImageStorage,
    EnhancedCTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

# What a PACS export carries about the patient; none of it may be stored.
PATIENT_TAGS = {
    "PatientName": "Doe^Jane^Q",
    "PatientID": "MRN-88231774",
    "OtherPatientIDs": "ALT-55512",
    "PatientBirthDate": "19610412",
    "PatientAddress": "12 Elm Street, Springfield",
    "InstitutionName": "Springfield General Hospital",
    "InstitutionAddress": "1 Hospital Road, Springfield",
    "ReferringPhysicianName": "House^Gregory",
    "AccessionNumber": "ACC9931177",
    "StudyID": "ST4471",
    "StudyDescription": "CT CHEST Doe",
    "StationName": "SPRINGCT01",
}
IDENTIFYING_TEXT = (
    "Doe",
    "Jane",
    "88231774",
    "ALT-55512",
    "19610412",
    "Elm Street",
    "Springfield",
    "House",
    "Gregory",
    "ACC9931177",
    "ST4471",
    "SPRINGCT01",
)


def dicom_file(dataset: Dataset, sop_class: str) -> bytes:
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.file_meta.MediaStorageSOPClassUID = sop_class
    dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    dataset.SOPClassUID = sop_class
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def ct_slice(
    hu,
    *,
    series: str = "1.2.826.0.1.3680043.8.498.1",
    instance: int | None = 1,
    position=(0.0, 0.0, 0.0),
    orientation=(1, 0, 0, 0, 1, 0),
    **tags,
) -> bytes:
    """A CT slice holding `hu` (Hounsfield units), stored as signed values + 1024."""
    dataset = Dataset()
    dataset.Modality = "CT"
    dataset.BodyPartExamined = "CHEST"
    dataset.SeriesInstanceUID = series
    dataset.SeriesDescription = "AX LUNG 1.25"
    if instance is not None:
        dataset.InstanceNumber = instance
    if position is not None:
        dataset.ImagePositionPatient = list(position)
        dataset.ImageOrientationPatient = list(orientation)
    dataset.PixelSpacing = [0.7, 0.7]
    dataset.SliceThickness = 1.25
    dataset.RescaleIntercept = -1024
    dataset.RescaleSlope = 1
    for keyword, value in tags.items():
        setattr(dataset, keyword, value)
    stored = (np.asarray(hu, dtype=np.int32) + 1024).astype(np.int16)
    dataset.set_pixel_data(stored, "MONOCHROME2", 16)
    return dicom_file(dataset, CTImageStorage)


def mr_slice(values, *, photometric="MONOCHROME2", window=None, instance=1, **tags) -> bytes:
    dataset = Dataset()
    dataset.Modality = "MR"
    dataset.SeriesInstanceUID = tags.pop("series", "1.2.826.0.1.3680043.8.498.2")
    dataset.SeriesDescription = "AX T2 FLAIR"
    dataset.InstanceNumber = instance
    if window:
        dataset.WindowCenter, dataset.WindowWidth = window
    for keyword, value in tags.items():
        setattr(dataset, keyword, value)
    dataset.set_pixel_data(np.asarray(values, dtype=np.uint16), photometric, 16)
    return dicom_file(dataset, MRImageStorage)


def multiframe_ct(frames_hu, positions) -> bytes:
    """An enhanced CT file: frames in one file, position per frame, rescale shared."""
    dataset = Dataset()
    dataset.Modality = "CT"
    dataset.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.3"
    dataset.InstanceNumber = 1
    shared = Dataset()
    transform = Dataset()
    transform.RescaleIntercept = -1024
    transform.RescaleSlope = 1
    transform.RescaleType = "HU"
    shared.PixelValueTransformationSequence = Sequence([transform])
    orientation = Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    shared.PlaneOrientationSequence = Sequence([orientation])
    measures = Dataset()
    measures.PixelSpacing = [0.5, 0.5]
    measures.SliceThickness = 2.0
    shared.PixelMeasuresSequence = Sequence([measures])
    dataset.SharedFunctionalGroupsSequence = Sequence([shared])
    per_frame = []
    for z in positions:
        item, plane = Dataset(), Dataset()
        plane.ImagePositionPatient = [0, 0, z]
        item.PlanePositionSequence = Sequence([plane])
        per_frame.append(item)
    dataset.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    stored = (np.asarray(frames_hu, dtype=np.int32) + 1024).astype(np.uint16)
    dataset.set_pixel_data(stored, "MONOCHROME2", 16)
    return dicom_file(dataset, EnhancedCTImageStorage)


def zip_of(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def ct_series(count: int, **tags) -> list[bytes]:
    """`count` slices 2 mm apart whose every pixel holds the slice's number in HU."""
    return [
        ct_slice(np.full((8, 8), n), instance=n, position=(0, 0, 2.0 * n), **tags)
        for n in range(1, count + 1)
    ]
