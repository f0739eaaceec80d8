"""Whole-slide images for tests, written with tifffile as an Aperio scanner writes
an SVS file: a tiled, pyramidal image (level 0 and a 4× smaller level), the
file's own thumbnail, and the two associated images that carry the patient's
name, a label and a macro photograph of the glass, each in a colour the slide
itself never has, so that a test can tell whether any of them was stored.
The properties hold a file name and a date, as scanners write them."""

from __future__ import annotations

import functools
import io

import numpy as np
import tifffile
from PIL import Image, ImageDraw

# The label's and macro's colours: no stain or glass is pure magenta or pure cyan.
LABEL_COLOUR = (255, 0, 255)
MACRO_COLOUR = (0, 255, 255)
GLASS = (242, 242, 240)
PATIENT_ON_LABEL = "DOE^JANE 88231774"
PROPERTY_TEXT = ("DOE_JANE", "12/03/1997", "dr.house")
_DESCRIPTION = "Aperio Image Library v12.0.15 \r\n"


@functools.cache
def tissue_slide(
    width: int = 3584,
    height: int = 2688,
    *,
    blobs=((1400, 1350, 1250, 1000), (3000, 1400, 450, 800)),
    mpp: float = 1.0,
) -> tuple[bytes, np.ndarray]:
    """An SVS slide scanned at 10/`mpp` × (1 µm a pixel is 10×): glass with
    H&E-coloured tissue in ellipses (x, y, radius x, radius y), textured with
    nuclei. Return the file and its level-0 tissue mask (True where tissue)."""
    rng = np.random.default_rng(7)
    pixels = np.empty((height, width, 3), np.uint8)
    pixels[:] = GLASS
    ys, xs = np.mgrid[0:height, 0:width]
    mask = np.zeros((height, width), bool)
    for cx, cy, rx, ry in blobs:
        mask |= ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 < 1
    eosin = np.array([222, 140, 190], np.int16) + rng.integers(-18, 18, (height, width, 1))
    pixels[mask] = np.clip(eosin[mask], 0, 255).astype(np.uint8)
    nuclei = mask & (rng.random((height, width)) < 0.02)
    pixels[nuclei] = (90, 60, 150)
    return _svs(pixels, mpp), mask


@functools.cache
def glass_slide(width: int = 2688, height: int = 1792) -> bytes:
    """A slide of empty glass: no tissue anywhere."""
    pixels = np.empty((height, width, 3), np.uint8)
    pixels[:] = GLASS
    return _svs(pixels, 1.0)


def plain_tiff() -> bytes:
    """A TIFF photograph, in strips: a picture, not a whole-slide image."""
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 90, 60)).save(out, format="TIFF")
    return out.getvalue()


def label_image() -> np.ndarray:
    picture = Image.new("RGB", (420, 400), LABEL_COLOUR)
    ImageDraw.Draw(picture).text((20, 180), PATIENT_ON_LABEL, fill=(0, 0, 0))
    return np.asarray(picture)


def _svs(pixels: np.ndarray, mpp: float) -> bytes:
    height, width = pixels.shape[:2]
    magnification = 10.0 / mpp
    base = (
        f"{_DESCRIPTION}{width}x{height} [0,0 {width}x{height}] (256x256) JPEG/RGB Q=70"
        f"|AppMag = {magnification:g}|MPP = {mpp:g}|Filename = {PROPERTY_TEXT[0]}"
        f"|Date = {PROPERTY_TEXT[1]}|User = {PROPERTY_TEXT[2]}"
    )
    reduced = np.ascontiguousarray(pixels[::4, ::4])
    thumbnail = np.ascontiguousarray(pixels[::16, ::16])
    macro = np.empty((300, 800, 3), np.uint8)
    macro[:] = MACRO_COLOUR
    macro[:, :300] = label_image()[:300, :300]  # the macro photographs the label too
    out = io.BytesIO()
    options = {
        "photometric": "rgb",
        "compression": "zlib",
        "compressionargs": {"level": 1},
        "metadata": None,
    }
    with tifffile.TiffWriter(out) as tiff:
        tiff.write(pixels, tile=(256, 256), description=base, **options)
        tiff.write(thumbnail, description=f"{_DESCRIPTION}thumbnail", **options)
        tiff.write(
            reduced,
            tile=(256, 256),
            description=f"{base} -> {reduced.shape[1]}x{reduced.shape[0]}",
            **options,
        )
        tiff.write(
            label_image(), description=f"{_DESCRIPTION}label 420x400", subfiletype=1, **options
        )
        tiff.write(macro, description=f"{_DESCRIPTION}macro 800x300", subfiletype=9, **options)
    return out.getvalue()
