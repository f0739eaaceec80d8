"""The clinic's time zone: --time-zone, else the machine's ($TZ, /etc/localtime)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from medserver_site.config import ServerConfig
from medserver_site.time_zone import parse_time_zone, system_time_zone


def test_tz_names_the_zone_before_the_system_files(tmp_path):
    assert system_time_zone({"TZ": "Asia/Kolkata"}, tmp_path / "none", tmp_path / "none") == (
        "Asia/Kolkata"
    )


def test_etc_localtime_linked_into_the_zone_database_names_the_zone(tmp_path):
    zoneinfo = tmp_path / "usr/share/zoneinfo/Europe"
    zoneinfo.mkdir(parents=True)
    (zoneinfo / "Berlin").write_bytes(b"TZif")
    localtime = tmp_path / "localtime"
    localtime.symlink_to(zoneinfo / "Berlin")
    assert system_time_zone({}, localtime, tmp_path / "none") == "Europe/Berlin"
    assert system_time_zone({"TZ": ":" + str(localtime)}, tmp_path / "x", tmp_path / "x") == (
        "Europe/Berlin"
    )


def test_etc_timezone_is_read_when_localtime_is_a_copy_and_utc_is_the_last_resort(tmp_path):
    copy = tmp_path / "localtime"
    copy.write_bytes(b"TZif")
    named = tmp_path / "timezone"
    named.write_text("America/Chicago\n")
    assert system_time_zone({}, copy, named) == "America/Chicago"
    assert system_time_zone({"TZ": "Not/AZone"}, copy, tmp_path / "none") == "UTC"


def test_an_unknown_time_zone_flag_is_refused_with_a_clear_message():
    assert parse_time_zone(" Europe/Lisbon ") == "Europe/Lisbon"
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        parse_time_zone("Mars/Olympus")
    env = {"MEDSERVER_TIME_ZONE": "Europe/Rome"}
    assert ServerConfig.from_environ(env).time_zone == "Europe/Rome"


@pytest.mark.django_db
def test_exports_give_times_in_the_clinics_zone_and_name_it(user, settings):
    import exports
    from chat import services
    from tests.chat.conversation import exchange

    settings.TIME_ZONE = "Asia/Kolkata"
    session = services.session_create(owner=user, model_name="demo")
    exchange(session, "Q", "A")
    moment = datetime(2026, 3, 14, 9, 26, tzinfo=UTC)
    markdown = exports.session_export(session, "md", exported_at=moment).content.decode()
    assert "- Exported: 2026-03-14 14:56 IST" in markdown
    assert "- Time zone: Asia/Kolkata" in markdown
