"""The clinic's time zone: the one the machine is set to, unless told otherwise.

Times in the page, the exports and the admin are shown in it, so a chart
reads the same clock as the ward.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

LOCALTIME = Path("/etc/localtime")
TIMEZONE_FILE = Path("/etc/timezone")


def parse_time_zone(text: str) -> str:
    """Return an IANA time zone name such as Europe/Berlin ("" for the system's);
    raise ValueError for a name the time zone database does not know."""
    name = text.strip()
    if name and not is_known(name):
        raise ValueError(
            f"unknown time zone {name!r}: use a name such as Europe/Berlin or America/New_York"
        )
    return name


def is_known(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def system_time_zone(
    environ: Mapping[str, str] = os.environ,
    localtime: Path = LOCALTIME,
    timezone_file: Path = TIMEZONE_FILE,
) -> str:
    """The machine's time zone as an IANA name: $TZ, else what /etc/localtime
    links to (or /etc/timezone names), else UTC."""
    tz = environ.get("TZ", "").lstrip(":")
    if tz.startswith("/"):
        localtime, tz = Path(tz), ""
    if tz and is_known(tz):
        return tz
    name = _zone_of_link(localtime)
    if name:
        return name
    try:
        name = timezone_file.read_text().strip()
    except OSError:
        name = ""
    return name if name and is_known(name) else "UTC"


def _zone_of_link(path: Path) -> str:
    """ "Europe/Berlin" for a link to …/zoneinfo/Europe/Berlin, else ""."""
    try:
        target = str(path.resolve(strict=True))
    except OSError:
        return ""
    _, found, name = target.partition("zoneinfo/")
    return name if found and is_known(name) else ""
