"""Passphrase encryption of a backup, as a stream: `cryptography`'s Fernet, in chunks.

A backup can be larger than memory, and Fernet encrypts one message at a time,
so the archive is cut into chunks of CHUNK_BYTES, each its own Fernet token.
Each token carries its chunk's number and whether it is the last, inside what
Fernet authenticates: chunks swapped, dropped, repeated or cut off at the end
are refused, not only chunks changed. The key comes from the passphrase through
scrypt, with a random salt kept in the file's header.

File: MAGIC, salt (16 bytes), then per chunk a 4-byte big-endian length and the token.
"""

from __future__ import annotations

import base64
import os
import struct
from typing import BinaryIO

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from lifecycle.errors import RestoreRefused

MAGIC = b"MEDSERVER-BACKUP-FERNET-1\n"
CHUNK_BYTES = 1024 * 1024
_SALT_BYTES = 16
_HEAD = struct.Struct(">QB")  # chunk number, 1 if last
_LENGTH = struct.Struct(">I")


def _fernet(passphrase: str, salt: bytes) -> Fernet:
    # n=2**15: about 0.1 s and 32 MiB to try one passphrase; the salt stops precomputation.
    key = Scrypt(salt=salt, length=32, n=2**15, r=8, p=1).derive(passphrase.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def is_encrypted(head: bytes) -> bool:
    """True if a file starting with `head` is an encrypted backup."""
    return head.startswith(MAGIC)


class EncryptingWriter:
    """A write-only file that encrypts what it is given into `raw`; close() ends it."""

    def __init__(self, raw: BinaryIO, passphrase: str) -> None:
        salt = os.urandom(_SALT_BYTES)
        self._raw = raw
        self._fernet = _fernet(passphrase, salt)
        self._buffer = bytearray()
        self._number = 0
        raw.write(MAGIC + salt)

    def write(self, data: bytes) -> int:
        self._buffer += data
        while len(self._buffer) > CHUNK_BYTES:
            self._emit(bytes(self._buffer[:CHUNK_BYTES]), last=False)
            del self._buffer[:CHUNK_BYTES]
        return len(data)

    def close(self) -> None:
        """Write the last chunk (possibly empty): a file without it is known to be cut off."""
        self._emit(bytes(self._buffer), last=True)
        self._buffer.clear()

    def _emit(self, data: bytes, *, last: bool) -> None:
        token = self._fernet.encrypt(_HEAD.pack(self._number, int(last)) + data)
        self._raw.write(_LENGTH.pack(len(token)) + token)
        self._number += 1


class DecryptingReader:
    """A read-only file giving back what EncryptingWriter was given.

    Raise RestoreRefused on a wrong passphrase, a changed, reordered or missing
    chunk, or a file cut off before its last chunk.
    """

    def __init__(self, raw: BinaryIO, passphrase: str) -> None:
        head = raw.read(len(MAGIC) + _SALT_BYTES)
        if not is_encrypted(head) or len(head) < len(MAGIC) + _SALT_BYTES:
            raise RestoreRefused("this is not an encrypted MedServer backup")
        self._raw = raw
        self._fernet = _fernet(passphrase, head[len(MAGIC) :])
        self._buffer = b""
        self._number = 0
        self._ended = False

    def read(self, size: int = -1) -> bytes:
        while not self._ended and (size < 0 or len(self._buffer) < size):
            self._buffer += self._next_chunk()
        if size < 0:
            size = len(self._buffer)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _next_chunk(self) -> bytes:
        length = self._raw.read(_LENGTH.size)
        if len(length) < _LENGTH.size:
            raise RestoreRefused("the encrypted backup is cut off (its last part is missing)")
        token = self._raw.read(_LENGTH.unpack(length)[0])
        try:
            plain = self._fernet.decrypt(token)
        except InvalidToken:
            if self._number == 0:
                raise RestoreRefused("wrong passphrase, or the backup is damaged") from None
            raise RestoreRefused("the encrypted backup was changed or is damaged") from None
        number, last = _HEAD.unpack_from(plain)
        if number != self._number:
            raise RestoreRefused("the encrypted backup's parts are out of order")
        self._number += 1
        if last:
            self._ended = True
            if self._raw.read(1):
                raise RestoreRefused("the encrypted backup has data after its end")
        return plain[_HEAD.size :]
