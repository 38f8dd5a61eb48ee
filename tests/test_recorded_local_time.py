"""Recorded local times: offsets, daylight saving changes, unknown zones."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import pytest

from smartbuilding.devices.local_time import LocalTimes, load_zone
from smartbuilding.devices.recorded import EXPECTED_HEADER, RecordedBuilding
from smartbuilding.errors import ConfigError


def test_local_time_offset_and_epoch() -> None:
    """A summer time in Los Angeles gets -07:00 and the matching instant."""
    times = LocalTimes(load_zone("America/Los_Angeles"))
    instant = times.convert("2013-08-23 23:05:00")
    assert instant.iso == "2013-08-23T23:05:00-07:00"
    assert instant.epoch == datetime.fromisoformat("2013-08-24T06:05:00+00:00").timestamp()
    assert times.cache["2013-08-23 23:05:00"] == instant


def test_local_time_winter_offset() -> None:
    """A winter time gets -08:00."""
    assert LocalTimes(load_zone("America/Los_Angeles")).convert("2013-12-01 12:00:00").iso == "2013-12-01T12:00:00-08:00"


def test_local_time_spring_gap_rejected() -> None:
    """A time inside the hour skipped when daylight saving time begins is rejected."""
    with pytest.raises(ValueError, match="does not exist in America/Los_Angeles"):
        LocalTimes(load_zone("America/Los_Angeles")).convert("2013-03-10 02:30:00")


def test_local_time_second_occurrence() -> None:
    """The repeated hour when clocks go back has a second, later occurrence at -08:00."""
    times = LocalTimes(load_zone("America/Los_Angeles"))
    later = times.second_occurrence("2013-11-03 01:30:00")
    assert later is not None
    assert later.iso == "2013-11-03T01:30:00-08:00"
    assert later.epoch - times.convert("2013-11-03 01:30:00").epoch == 3600
    assert times.second_occurrence("2013-11-03 03:30:00") is None


def test_local_time_unknown_zone() -> None:
    """An unknown zone name is a ConfigError naming it."""
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Olympus'"):
        load_zone("Mars/Olympus")


def test_local_time_fall_back_rows_kept(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A room file running through the repeated hour plays every row, in instant order."""
    times = ["00:59", "01:00", "01:30", "01:59", "01:00", "01:30", "01:59", "02:00"]
    rows = [f"2013-11-03 {hhmm}:00,500,45,96,0,23" for hhmm in times]
    (tmp_path / "413.csv").write_text("\n".join([EXPECTED_HEADER, *rows]) + "\n")
    recorded = RecordedBuilding(tmp_path, LocalTimes(load_zone("America/Los_Angeles")), strict=True)
    with caplog.at_level(logging.WARNING):
        played = list(recorded.rows())
    assert [row[2][11:] for row in played] == [
        "00:59:00-07:00", "01:00:00-07:00", "01:30:00-07:00", "01:59:00-07:00",
        "01:00:00-08:00", "01:30:00-08:00", "01:59:00-08:00", "02:00:00-08:00",
    ]
    assert all(played[i][0] < played[i + 1][0] for i in range(len(played) - 1))
