"""Uploaded images: only PNG/JPEG/WebP, fully decoded, re-encoded without metadata."""

from __future__ import annotations

import io
import os
import struct
import time
import zlib

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from imaging import ImageRejected
from imaging.images import MAX_PIXELS, clean_image

MB = 1024 * 1024
ARTIST = 0x013B
IMAGE_DESCRIPTION = 0x010E
PATIENT = "Jane Doe 1961-04-12"


def _encode(image: Image.Image, image_format: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format=image_format, **options)
    return out.getvalue()


def _picture(size=(32, 24), mode="RGB") -> Image.Image:
    """A small picture with structure, so a decoded copy can be compared pixel by pixel."""
    image = Image.new(mode, size)
    image.putdata(
        [((x * 8) % 256, (y * 10) % 256, 90) for y in range(size[1]) for x in range(size[0])]
    )
    return image


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[ARTIST] = "Dr. Artist"
    exif[IMAGE_DESCRIPTION] = f"Chest film of {PATIENT}"
    return exif


def _png_with_size(width: int, height: int) -> bytes:
    """A small real PNG whose header then claims `width` x `height` (CRC fixed up)."""
    raw = bytearray(_encode(Image.new("L", (4, 4)), "PNG"))
    ihdr = raw.index(b"IHDR")
    raw[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(raw[ihdr : ihdr + 17]))
    raw[ihdr + 17 : ihdr + 21] = struct.pack(">I", crc)
    return bytes(raw)


def _opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# --- accepted formats


@pytest.mark.parametrize(
    ("image_format", "content_type", "extension"),
    [("PNG", "image/png", ".png"), ("JPEG", "image/jpeg", ".jpg"), ("WEBP", "image/webp", ".webp")],
)
def test_png_jpeg_and_webp_are_accepted_and_re_encoded(image_format, content_type, extension):
    picture = _picture()
    raw = _encode(picture, image_format, **({"quality": 90} if image_format != "PNG" else {}))

    clean = clean_image(raw, name="scan", max_bytes=MB)

    assert (clean.content_type, clean.extension) == (content_type, extension)
    assert (clean.width, clean.height) == picture.size
    result = _opened(clean.data)
    assert result.format == image_format
    assert result.size == picture.size
    if image_format == "PNG":  # lossless: the very same pixels come back
        assert result.convert("RGB").tobytes() == picture.tobytes()


def test_png_is_re_encoded_not_passed_through():
    raw = _encode(_picture(), "PNG", pnginfo=_text_chunk())

    assert clean_image(raw, name="scan.png", max_bytes=MB).data != raw


def test_grayscale_stays_grayscale_and_alpha_is_flattened_to_rgb():
    gray = clean_image(_encode(Image.new("L", (5, 5), 128), "PNG"), name="g", max_bytes=MB)
    rgba = clean_image(
        _encode(Image.new("RGBA", (5, 5), (10, 20, 30, 128)), "PNG"), name="a", max_bytes=MB
    )

    assert _opened(gray.data).mode == "L"
    assert _opened(rgba.data).mode == "RGB"


# --- metadata is removed


def _text_chunk() -> PngInfo:
    info = PngInfo()
    info.add_text("Patient", PATIENT)
    return info


def test_jpeg_exif_is_gone_after_cleaning():
    raw = _encode(_picture(), "JPEG", exif=_exif())
    assert PATIENT.encode() in raw  # the test file really carries it

    clean = clean_image(raw, name="photo.jpg", max_bytes=MB)

    result = _opened(clean.data)
    assert dict(result.getexif()) == {}
    assert "exif" not in result.info
    assert PATIENT.encode() not in clean.data
    assert b"Dr. Artist" not in clean.data


def test_webp_exif_is_gone_after_cleaning():
    raw = _encode(_picture(), "WEBP", exif=_exif())
    assert PATIENT.encode() in raw

    clean = clean_image(raw, name="photo.webp", max_bytes=MB)

    assert dict(_opened(clean.data).getexif()) == {}
    assert PATIENT.encode() not in clean.data


def test_png_text_and_exif_chunks_are_gone_after_cleaning():
    raw = _encode(_picture(), "PNG", pnginfo=_text_chunk(), exif=_exif())
    assert PATIENT.encode() in raw

    clean = clean_image(raw, name="scan.png", max_bytes=MB)

    result = _opened(clean.data)
    assert "Patient" not in result.info
    assert dict(result.getexif()) == {}
    assert PATIENT.encode() not in clean.data


def test_jpeg_comment_is_gone_after_cleaning():
    raw = _encode(_picture(), "JPEG", comment=f"Patient {PATIENT}".encode())
    assert PATIENT.encode() in raw

    clean = clean_image(raw, name="photo.jpg", max_bytes=MB)

    assert "comment" not in _opened(clean.data).info
    assert PATIENT.encode() not in clean.data


# --- refused files


@pytest.mark.parametrize("image_format", ["GIF", "BMP", "TIFF"])
def test_other_image_formats_are_refused_by_name(image_format):
    raw = _encode(_picture(), image_format)

    with pytest.raises(ImageRejected) as refused:
        clean_image(raw, name="old-scan.img", max_bytes=MB)

    assert str(refused.value) == "old-scan.img is not a PNG, JPEG or WebP image."


def test_text_file_is_refused():
    with pytest.raises(ImageRejected) as refused:
        clean_image(b"Patient notes, not an image\n", name="notes.txt", max_bytes=MB)

    assert str(refused.value) == "notes.txt could not be read as an image."


def test_empty_file_is_refused():
    with pytest.raises(ImageRejected, match="could not be read as an image"):
        clean_image(b"", name="empty.png", max_bytes=MB)


def test_truncated_png_is_refused():
    noise = Image.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3))
    raw = _encode(noise, "PNG")

    with pytest.raises(ImageRejected) as refused:
        clean_image(raw[: len(raw) * 2 // 3], name="cut.png", max_bytes=MB)

    assert str(refused.value) == "cut.png could not be read as an image."


def test_truncated_jpeg_is_refused():
    noise = Image.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3))
    raw = _encode(noise, "JPEG", quality=95)

    with pytest.raises(ImageRejected, match="could not be read as an image"):
        clean_image(raw[: len(raw) // 2], name="cut.jpg", max_bytes=MB)


def test_file_over_max_bytes_is_refused_with_its_size_and_the_limit():
    noise = Image.frombytes("RGB", (700, 700), os.urandom(700 * 700 * 3))
    raw = _encode(noise, "PNG", compress_level=0)
    assert len(raw) > MB

    with pytest.raises(ImageRejected) as refused:
        clean_image(raw, name="huge.png", max_bytes=MB)

    message = str(refused.value)
    assert message.startswith("huge.png is 1.4 MB")
    assert "the limit is 1 MB" in message


def test_file_exactly_at_max_bytes_is_accepted():
    raw = _encode(_picture(), "PNG")

    assert clean_image(raw, name="ok.png", max_bytes=len(raw)).width == 32


def test_decompression_bomb_is_refused_from_its_header_without_decoding():
    side = int(MAX_PIXELS**0.5) + 100  # just over the limit, under Pillow's own bomb check
    raw = _png_with_size(side, side)
    assert Image.open(io.BytesIO(raw)).size == (side, side)

    with pytest.raises(ImageRejected) as refused:
        clean_image(raw, name="bomb.png", max_bytes=MB)

    # Decoding would have failed on the missing data with another message.
    assert str(refused.value) == f"bomb.png has too many pixels ({side}×{side})."


def test_giant_declared_dimensions_are_refused_quickly():
    raw = _png_with_size(60_000, 60_000)
    started = time.monotonic()

    with pytest.raises(ImageRejected):
        clean_image(raw, name="bomb.png", max_bytes=MB)

    assert time.monotonic() - started < 1


def test_sixteen_bit_grayscale_png_keeps_its_contrast():
    film = Image.new("I;16", (256, 4))
    film.putdata([x * 256 for _ in range(4) for x in range(256)])

    clean = clean_image(_encode(film, "PNG"), name="film.png", max_bytes=MB)

    row = [_opened(clean.data).convert("L").getpixel((x, 0)) for x in range(256)]
    assert row[0] < 10
    assert 100 < row[128] < 156
    assert row[255] > 245
