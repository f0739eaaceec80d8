"""Accepting an uploaded image: checked, fully decoded, stripped of metadata."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from imaging.errors import ImageRejected

ALLOWED_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
EXTENSIONS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}
# Large enough for any radiograph or photographed slide; a decompression
# bomb declares far more pixels than this and is refused before decoding.
MAX_PIXELS = 80_000_000


class ImageTooLarge(ImageRejected):
    """An image over the byte or pixel limit."""


class ImageUnsupported(ImageRejected):
    """A file that is not a PNG, JPEG or WebP image."""


@dataclass(frozen=True)
class CleanImage:
    data: bytes
    content_type: str
    extension: str
    width: int
    height: int


def clean_image(raw: bytes, *, name: str, max_bytes: int) -> CleanImage:
    """Return the image re-encoded without EXIF or other metadata.

    Raise ImageRejected when it is too large, not a PNG/JPEG/WebP, or broken.
    """
    if len(raw) > max_bytes:
        raise ImageTooLarge(
            f"{name} is {len(raw) / 1048576:.1f} MB; the limit is {max_bytes // 1048576} MB."
        )
    try:
        with Image.open(io.BytesIO(raw)) as image:
            if image.format not in ALLOWED_FORMATS:
                raise ImageUnsupported(f"{name} is not a PNG, JPEG or WebP image.")
            if image.width * image.height > MAX_PIXELS:
                raise ImageTooLarge(f"{name} has too many pixels ({image.width}×{image.height}).")
            image_format = image.format
            image.load()  # decode it all now: a truncated file fails here, not later
            icc_profile = image.info.get("icc_profile")
            clean = _to_display_mode(image)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError):
        raise ImageRejected(f"{name} could not be read as an image.") from None
    # Only pixels (and the colour profile) travel on: EXIF, XMP, comments and
    # text chunks, where patient names hide, are left behind.
    clean.info = {}
    options = {"quality": 95} if image_format in ("JPEG", "WEBP") else {}
    if icc_profile:
        options["icc_profile"] = icc_profile
    out = io.BytesIO()
    clean.save(out, format=image_format, **options)
    return CleanImage(
        out.getvalue(),
        ALLOWED_FORMATS[image_format],
        EXTENSIONS[image_format],
        clean.width,
        clean.height,
    )


def _to_display_mode(image: Image.Image) -> Image.Image:
    """Return an 8-bit RGB or grayscale copy of the image.

    16-bit and 32-bit grayscale (how radiographs often leave a PACS viewer) is
    stretched over its own range rather than clipped at 255.
    """
    if image.mode in ("RGB", "L"):
        return image.copy()
    if image.mode.startswith("I") or image.mode == "F":
        wide = image.convert("F")
        low, high = wide.getextrema()
        scale = 255.0 / (high - low) if high > low else 0.0
        return wide.point(lambda value: (value - low) * scale).convert("L")
    return image.convert("RGB")
