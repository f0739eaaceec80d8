"""What the API tests build and read: images as bytes and data URIs, error bodies."""

from __future__ import annotations

import base64
import io

from PIL import Image


def png_bytes(size=(64, 48), color=120) -> bytes:
    out = io.BytesIO()
    Image.new("L", size, color=color).save(out, "PNG")
    return out.getvalue()


def data_uri(raw: bytes, kind: str = "image/png") -> str:
    return f"data:{kind};base64,{base64.b64encode(raw).decode()}"


def error_of(response) -> dict:
    return response.json()["error"]
