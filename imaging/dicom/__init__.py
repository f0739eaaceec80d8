"""DICOM: read series (read), render their slices (render), window them (windows),
decode compressed pixel data (codecs), pick what fits one message (slices), and
keep a whole series' values for a viewer and for picking again (volume)."""

from imaging.dicom.read import (
    SUFFIXES,
    DicomFile,
    DicomRejected,
    Frame,
    Series,
    is_dicom,
    order_frames,
    read_series,
    sample_evenly,
)
from imaging.dicom.render import RenderedSlice, render_series

__all__ = [
    "SUFFIXES",
    "DicomFile",
    "DicomRejected",
    "Frame",
    "RenderedSlice",
    "Series",
    "is_dicom",
    "order_frames",
    "read_series",
    "render_series",
    "sample_evenly",
]
