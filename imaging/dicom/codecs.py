"""Decoding a DICOM file's pixel data, compressed or not.

pydicom decodes uncompressed and deflated data itself; the compressed transfer
syntaxes a PACS exports (JPEG Baseline and Extended, JPEG Lossless, JPEG-LS,
JPEG 2000, High-Throughput JPEG 2000 and RLE) are decoded by the pylibjpeg
plugins MedServer installs (pylibjpeg-libjpeg, -openjpeg and -rle). A syntax no
installed plugin decodes is refused by its name, so that the clinician knows
what to ask the PACS for instead.
"""

from __future__ import annotations

import numpy as np
import pydicom
from pydicom.pixels import get_decoder, pixel_array
from pydicom.uid import UID, ImplicitVRLittleEndian

from imaging.errors import ImageRejected

# Syntaxes newer than the pydicom MedServer requires, named here so a refusal can say which.
_NAMES = {
    "1.2.840.10008.1.2.4.110": "JPEG XL Lossless",
    "1.2.840.10008.1.2.4.111": "JPEG XL JPEG Recompression",
    "1.2.840.10008.1.2.4.112": "JPEG XL",
}


class PixelDataUndecodable(ImageRejected):
    """Pixel data in a transfer syntax that cannot be decoded here, or damaged."""


def transfer_syntax(dataset: pydicom.Dataset) -> UID:
    """The transfer syntax of `dataset` (implicit little endian when unstated,
    as a file without its meta header is)."""
    meta = getattr(dataset, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    return UID(str(syntax)) if syntax else ImplicitVRLittleEndian


def can_decode(syntax: UID) -> bool:
    """Whether an installed decoder reads pixel data in `syntax`."""
    try:
        return get_decoder(syntax).is_available
    except NotImplementedError:  # a syntax pydicom has no decoder for at all
        return False


def describe(syntax: UID) -> str:
    """A transfer syntax as a person can look it up: "JPEG 2000 Image Compression
    (1.2.840.10008.1.2.4.91)", or the bare UID when pydicom does not know it."""
    name = _NAMES.get(str(syntax)) or syntax.name
    return f"{name} ({syntax})" if name and name != str(syntax) else str(syntax)


def decode_frame(dataset: pydicom.Dataset, index: int | None, name: str) -> np.ndarray:
    """Return the pixels of frame `index` of `dataset` (all of them when None).

    Raise PixelDataUndecodable naming the transfer syntax when no installed
    decoder reads it, or saying the data is damaged when one does but fails;
    `name` is how the file is called in those messages.
    """
    syntax = transfer_syntax(dataset)
    if not can_decode(syntax):
        raise PixelDataUndecodable(
            f"The image data of {name} is compressed as {describe(syntax)}, which "
            "MedServer cannot decode. It reads uncompressed, JPEG (baseline, extended "
            "and lossless), JPEG-LS, JPEG 2000 and RLE images: export the series in "
            "one of those."
        )
    try:
        return pixel_array(dataset, index=index)
    except Exception:  # a truncated or damaged stream: each decoder raises its own kind
        raise PixelDataUndecodable(
            f"The image data of {name} is damaged: its {describe(syntax)} stream "
            "could not be decoded."
        ) from None
