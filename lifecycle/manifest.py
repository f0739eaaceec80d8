"""What a backup archive holds and how its manifest describes it.

Archive (tar, gzip; encrypted by lifecycle.crypto when a passphrase is given):

    medserver.sqlite3          the database, one consistent state (lifecycle.database)
    secret_key                 signs sessions and links; without it every sign-in ends
    uploads/attachments/...    every image file an image row points at
    settings.json              the server's settings when it was taken, secrets left out
    manifest.json              last: version, migrations, counts, and each file's SHA-256
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath

FORMAT = 1
MANIFEST_NAME = "manifest.json"
SETTINGS_NAME = "settings.json"


@dataclass
class Manifest:
    medserver_version: str
    created_at: str  # ISO 8601, UTC
    migrations: dict[str, list[str]]
    counts: dict[str, int]
    files: dict[str, dict] = field(default_factory=dict)  # name -> {"sha256", "size"}
    # Image rows kept although their file was already gone from the data dir.
    missing_files: list[str] = field(default_factory=list)
    encrypted: bool = False
    format: int = FORMAT

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        """Read a manifest; raise ValueError when it is not one this MedServer can read."""
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"unknown backup format {data.get('format')!r}")
        known = cls.__dataclass_fields__
        return cls(**{key: value for key, value in data.items() if key in known})

    def describe(self) -> str:
        """One line for people: when, which version, how much."""
        counts = self.counts
        return (
            f"taken {self.created_at} by MedServer {self.medserver_version}: "
            f"{counts.get('users', 0)} users, {counts.get('chats', 0)} chats, "
            f"{counts.get('messages', 0)} messages, {counts.get('images', 0)} images"
        )


_SAFE_PART = re.compile(r"^[A-Za-z0-9._-]+$")


def is_safe_member(name: str) -> bool:
    """True for a relative path of plain parts, nothing that could climb out of a folder."""
    path = PurePosixPath(name)
    return (
        bool(name)
        and not path.is_absolute()
        and all(_SAFE_PART.match(part) and part not in (".", "..") for part in path.parts)
    )


def version_tuple(version: str) -> tuple[int, ...]:
    """'0.10.2' -> (0, 10, 2); the leading numbers of each part, for comparing releases."""
    numbers = []
    for part in version.split("."):
        match = re.match(r"\d+", part)
        if not match:
            break
        numbers.append(int(match.group()))
    return tuple(numbers)
