"""Encrypted backups in chunks: any chunk changed, moved, dropped or cut off is refused."""

from __future__ import annotations

import io
import os
import struct

import pytest

from lifecycle import crypto
from lifecycle.errors import RestoreRefused

PASSPHRASE = "correct horse battery staple"
DATA = os.urandom(crypto.CHUNK_BYTES * 3 + 12345)


def encrypted(data: bytes = DATA) -> bytes:
    out = io.BytesIO()
    writer = crypto.EncryptingWriter(out, PASSPHRASE)
    for start in range(0, len(data), 100_000):  # as tarfile writes: in pieces
        writer.write(data[start : start + 100_000])
    writer.close()
    return out.getvalue()


def chunks(raw: bytes) -> tuple[bytes, list[bytes]]:
    """The header, and each chunk with its length prefix."""
    header_length = len(crypto.MAGIC) + 16
    head, rest, parts = raw[:header_length], raw[header_length:], []
    while rest:
        (length,) = struct.unpack(">I", rest[:4])
        parts.append(rest[: 4 + length])
        rest = rest[4 + length :]
    return head, parts


def decrypted(raw: bytes, passphrase: str = PASSPHRASE) -> bytes:
    reader = crypto.DecryptingReader(io.BytesIO(raw), passphrase)
    return b"".join(iter(lambda: reader.read(65536), b""))


def test_what_is_encrypted_with_a_passphrase_comes_back_only_with_it():
    raw = encrypted()
    assert crypto.is_encrypted(raw) and DATA[:64] not in raw
    assert decrypted(raw) == DATA
    with pytest.raises(RestoreRefused, match="wrong passphrase"):
        decrypted(raw, "another passphrase")


def test_chunks_changed_reordered_dropped_or_cut_off_are_refused():
    head, parts = chunks(encrypted())
    assert len(parts) == 4
    changed = bytearray(parts[1])
    changed[50] ^= 1
    variants = {
        "changed": head + parts[0] + bytes(changed) + b"".join(parts[2:]),
        "reordered": head + parts[0] + parts[2] + parts[1] + parts[3],
        "dropped": head + parts[0] + b"".join(parts[2:]),
        "last dropped": head + b"".join(parts[:3]),
        "cut off": head + b"".join(parts)[:-100],
        "appended": head + b"".join(parts) + parts[3],
    }
    for name, raw in variants.items():
        with pytest.raises(RestoreRefused):
            decrypted(raw)
            pytest.fail(name)
