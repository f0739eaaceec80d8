"""Accepting an uploaded image: checked, fully decoded, stripped of metadata."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from chat.errors import MessageRejected

ALLOWED_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
EXTENSIONS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}
# Large enough for any radiograph or photographed slide; a decompression
# bomb declares far more pixels than this and is refused before decoding.
MAX_PIXELS = 80_000_000


@dataclass(frozen=True)
class CleanImage:
    data: bytes
    content_type: str
    extension: str
    width: int
    height: int


def clean_image(raw: bytes, *, name: str, max_bytes: int) -> CleanImage:
    """Return the image re-encoded without EXIF or other metadata.

    Raise MessageRejected when it is too large, not a PNG/JPEG/WebP, or broken.
    """
    if len(raw) > max_bytes:
        raise MessageRejected(
            f"{name} is {len(raw) / 1048576:.1f} MB; the limit is {max_bytes // 1048576} MB."
        )
    try:
        with Image.open(io.BytesIO(raw)) as image:
            if image.format not in ALLOWED_FORMATS:
                raise MessageRejected(f"{name} is not a PNG, JPEG or WebP image.")
            if image.width * image.height > MAX_PIXELS:
                raise MessageRejected(f"{name} has too many pixels ({image.width}×{image.height}).")
            image_format = image.format
            image.load()  # decode it all now: a truncated file fails here, not later
            clean = image.convert("RGB") if image.mode not in ("RGB", "L") else image.copy()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError):
        raise MessageRejected(f"{name} could not be read as an image.") from None
    out = io.BytesIO()
    options = {"quality": 95} if image_format in ("JPEG", "WEBP") else {}
    clean.save(out, format=image_format, **options)  # no exif= argument: metadata dropped
    return CleanImage(
        out.getvalue(),
        ALLOWED_FORMATS[image_format],
        EXTENSIONS[image_format],
        clean.width,
        clean.height,
    )
