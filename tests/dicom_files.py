"""Real DICOM files for tests, written with pydicom: CT slices and series (Hounsfield
units stored with a rescale intercept of -1024), MR slices, an enhanced multi-frame
CT file, zips of them, the same compressed (RLE, JPEG 2000, JPEG Lossless and
Baseline), and the patient details a PACS export carries."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.sequence import Sequence
from pydicom.uid import (
    MPEG2MPML,
    UID,
    CTImageStorage,
    EnhancedCTImageStorage,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
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


def compressed(raw: bytes, syntax: str) -> bytes:
    """`raw` (an uncompressed DICOM file) re-encoded in `syntax` by pydicom's own
    encoders and the pylibjpeg plugins: RLE Lossless, JPEG 2000 (lossless)."""
    dataset = pydicom.dcmread(io.BytesIO(raw))
    dataset.compress(syntax)
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def jpeg_baseline(raw: bytes) -> bytes:
    """`raw` (an uncompressed 8-bit grayscale file) as JPEG Baseline, encoded by Pillow
    (pydicom has no JPEG encoder) and encapsulated as a PACS would."""
    dataset = pydicom.dcmread(io.BytesIO(raw))
    picture = io.BytesIO()
    Image.fromarray(dataset.pixel_array.astype(np.uint8)).save(picture, format="JPEG", quality=100)
    return _encapsulated(dataset, [picture.getvalue()], JPEGBaseline8Bit)


def with_syntax(raw: bytes, syntax: str) -> bytes:
    """`raw`'s pixels encapsulated under `syntax` as they are: a file in a syntax
    (MPEG-2, JPEG XL...) that nothing here decodes."""
    dataset = pydicom.dcmread(io.BytesIO(raw))
    if UID(syntax).is_transfer_syntax:
        return _encapsulated(dataset, [dataset.PixelData], syntax)
    # pydicom writes no syntax newer than itself: write MPEG-2's, then put `syntax` in its place.
    stand_in = MPEG2MPML
    assert len(stand_in) == len(syntax)
    written = _encapsulated(dataset, [dataset.PixelData], stand_in)
    return written.replace(stand_in.encode(), syntax.encode(), 1)


def damaged(raw: bytes) -> bytes:
    """`raw` (a compressed file) with its one frame cut to its first 40 bytes."""
    dataset = pydicom.dcmread(io.BytesIO(raw))
    (frame,) = generate_frames(dataset.PixelData, number_of_frames=1)
    return _encapsulated(dataset, [frame[:40]], dataset.file_meta.TransferSyntaxUID)


def _encapsulated(dataset: Dataset, frames: list[bytes], syntax: str) -> bytes:
    dataset.PixelData = encapsulate(frames)
    dataset["PixelData"].VR = "OB"
    dataset.file_meta.TransferSyntaxUID = syntax
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def jpeg_lossless(raw: bytes) -> bytes:
    """`raw` (an uncompressed 16-bit grayscale file) as JPEG Lossless, First-Order
    Prediction (process 14, selection value 1), what PACS most often export.
    Neither pydicom nor Pillow encodes it, nor decodes it: only a plugin does."""
    dataset = pydicom.dcmread(io.BytesIO(raw))
    stored = dataset.pixel_array.astype(np.int64) & 0xFFFF  # the bits as stored
    return _encapsulated(dataset, [_lossless_jpeg(stored)], JPEGLosslessSV1)


def _lossless_jpeg(pixels: np.ndarray, precision: int = 16) -> bytes:
    """A baseline lossless JPEG (ITU T.81 process 14, predictor 1) of 2-D `pixels`,
    with one Huffman table giving each difference category a 5-bit code."""
    rows, columns = pixels.shape
    predicted = np.empty_like(pixels)
    predicted[0, 0] = 1 << (precision - 1)
    predicted[0, 1:] = pixels[0, :-1]  # first row: the pixel to the left
    predicted[1:, 0] = pixels[:-1, 0]  # first column: the pixel above
    predicted[1:, 1:] = pixels[1:, :-1]  # elsewhere: to the left
    bits = []
    for difference in ((pixels - predicted) % 65536).ravel().tolist():
        if difference >= 32768:
            difference -= 65536
        category = 16 if difference == 32768 else abs(difference).bit_length()
        bits.append(format(category, "05b"))
        if 0 < category < 16:
            extra = difference if difference > 0 else difference - 1
            bits.append(format(extra & ((1 << category) - 1), f"0{category}b"))
    stream = "".join(bits)
    stream += "1" * (-len(stream) % 8)
    scan = int(stream, 2).to_bytes(len(stream) // 8, "big").replace(b"\xff", b"\xff\x00")

    def segment(marker: int, body: bytes) -> bytes:
        return bytes([0xFF, marker]) + (len(body) + 2).to_bytes(2, "big") + body

    counts = bytes([0, 0, 0, 0, 17] + [0] * 11)  # 17 codes of 5 bits
    frame = bytes([precision]) + rows.to_bytes(2, "big") + columns.to_bytes(2, "big")
    return b"".join(
        [
            b"\xff\xd8",
            segment(0xC3, frame + bytes([1, 1, 0x11, 0])),
            segment(0xC4, bytes([0x00]) + counts + bytes(range(17))),
            segment(0xDA, bytes([1, 1, 0x00, 1, 0, 0])),  # predictor 1, no point transform
            scan,
            b"\xff\xd9",
        ]
    )


# Hounsfield units of the bands of ct_bands, left to right: air to dense bone.
BAND_HU = (-1000, -850, -600, -400, -200, -100, -50, 0, 20, 40, 60, 80, 150, 400, 1000, 2000)


def ct_bands(count: int, size: int = 512) -> list[bytes]:
    """`count` CT slices of `size`×`size` pixels, each in len(BAND_HU) vertical
    bands of equal width: band b of slice n (from 1) holds BAND_HU[b] + 5 × (n - 1) HU."""
    columns = np.repeat(np.array(BAND_HU), -(-size // len(BAND_HU)))[:size]
    return [
        ct_slice(np.tile(columns + 5 * (n - 1), (size, 1)), instance=n, position=(0, 0, 2.0 * n))
        for n in range(1, count + 1)
    ]


def ct_phantom(count: int, size: int = 384) -> list[bytes]:
    """A CT series that looks like a chest (air, fat, soft tissue, lungs with
    vessels, a spine and ribs, a nodule in a few slices), for screenshots."""
    y, x = np.mgrid[0:size, 0:size] / size
    rng = np.random.default_rng(7)
    slices = []
    for n in range(1, count + 1):
        t = n / count
        hu = np.full((size, size), -1000.0)
        body = ((x - 0.5) / 0.44) ** 2 + ((y - 0.52) / 0.34) ** 2
        hu[body < 1.0] = -100  # subcutaneous fat
        hu[body < 0.85] = 40  # muscle and organs
        for side in (0.30, 0.70):
            lung = ((x - side) / (0.15 + 0.02 * np.sin(t * np.pi))) ** 2 + ((y - 0.50) / 0.24) ** 2
            hu[lung < 1.0] = -850
            for k in range(7):  # vessels that drift from slice to slice
                cx = side + 0.09 * np.cos(k * 1.7 + t * 2.0)
                cy = 0.50 + 0.17 * np.sin(k * 2.3 + t * 1.5)
                hu[(x - cx) ** 2 + (y - cy) ** 2 < (0.008 + 0.004 * (k % 3)) ** 2] = 40
        hu[((x - 0.5) / 0.09) ** 2 + ((y - 0.50) / 0.12) ** 2 < 1.0] = 45  # mediastinum
        hu[(x - 0.5) ** 2 + (y - 0.80) ** 2 < 0.05**2] = 700  # vertebral body
        hu[(x - 0.5) ** 2 + (y - 0.80) ** 2 < 0.035**2] = 250  # its marrow
        for k in range(10):  # ribs round the chest wall
            angle = np.pi * (0.1 + 0.8 * k / 9)
            cx, cy = 0.5 + 0.40 * np.cos(angle + np.pi), 0.52 - 0.29 * np.sin(angle)
            hu[(x - cx) ** 2 + (y - cy) ** 2 < 0.014**2] = 600
        if abs(t - 0.5) < 0.15:  # a nodule in the right lung
            hu[(x - 0.26) ** 2 + (y - 0.42) ** 2 < (0.025 * (1 - abs(t - 0.5) / 0.15)) ** 2] = 30
        hu += rng.normal(0, 8, hu.shape)
        slices.append(
            ct_slice(np.round(hu), instance=n, position=(0, 0, 2.5 * n), SliceThickness=2.5)
        )
    return slices
