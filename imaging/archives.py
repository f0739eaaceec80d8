"""Zip files of DICOM images: their members, read one at a time, within limits.

A zip can claim far more than it holds (a "zip bomb"), so the count of members
and the sum of their unpacked sizes are checked against limits before anything
is unpacked; each member is then read only up to the size it declared.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

from imaging.errors import ImageRejected

MAX_MEMBERS = 5000  # more files than any CT or MR series on a disc
# The unpacked size allowed, as a multiple of the upload limit: CT pixel data
# rarely compresses more than 3 to 5 times.
MAX_EXPANSION = 20
_IGNORED_NAMES = {"DICOMDIR", "Thumbs.db", "desktop.ini"}


class ArchiveRejected(ImageRejected):
    """A zip file that cannot be unpacked safely or at all."""


class ArchiveTooLarge(ArchiveRejected):
    """A zip file over the limits: too many files, or too much once unpacked."""


@dataclass(frozen=True)
class Member:
    """A file inside a zip. `name` is for messages only: the zip's name and the
    member's place in it ("upload 1, file 4"), never its path, which often
    holds the patient's name."""

    name: str
    size: int
    _archive: zipfile.ZipFile
    _info: zipfile.ZipInfo

    def read(self) -> bytes:
        """Return the member's bytes (never more than its declared size)."""
        with self._archive.open(self._info) as handle:
            return handle.read(self._info.file_size + 1)[: self._info.file_size]


def is_zip(raw: bytes) -> bool:
    return raw[:4] == b"PK\x03\x04"


def zip_members(raw: bytes, *, name: str, max_bytes: int) -> list[Member]:
    """Return the files in the zip `raw` (folders, hidden and system files left out).

    `max_bytes` is the upload limit: no member may be larger, and all of them
    together no larger than MAX_EXPANSION times it. Raise ArchiveRejected when
    the zip is damaged or encrypted, ArchiveTooLarge when it is over the limits.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise ArchiveRejected(f"{name} could not be read as a zip file.") from None
    files = [info for info in infos if not info.is_dir() and not _ignored(info.filename)]
    if len(infos) > MAX_MEMBERS:
        raise ArchiveTooLarge(
            f"{name} holds {len(infos):,} files; at most {MAX_MEMBERS:,} are accepted."
        )
    if any(info.flag_bits & 0x1 for info in files):
        raise ArchiveRejected(f"{name} is password-protected; zip the files without a password.")
    total = sum(info.file_size for info in files)
    limit = max_bytes * MAX_EXPANSION
    if total > limit:
        raise ArchiveTooLarge(
            f"{name} unpacks to {total / 1048576:,.0f} MB; the limit is {limit // 1048576:,} MB."
        )
    too_big = next((info for info in files if info.file_size > max_bytes), None)
    if too_big is not None:
        raise ArchiveTooLarge(
            f"{name} holds a file of {too_big.file_size / 1048576:.1f} MB; "
            f"the limit is {max_bytes // 1048576} MB per file."
        )
    return [
        Member(f"{name}, file {n}", info.file_size, archive, info)
        for n, info in enumerate(files, 1)
    ]


def _ignored(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return (
        not parts
        or parts[0] == "__MACOSX"
        or parts[-1].startswith(".")
        or parts[-1] in _IGNORED_NAMES
    )
