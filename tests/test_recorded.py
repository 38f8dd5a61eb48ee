"""The recorded-building reader: room files, headers, rows, malformed rows, time order."""

from __future__ import annotations

import csv
import gzip
import io
import logging
import math
from pathlib import Path

import pytest

from smartbuilding.devices.local_time import LocalTimes, load_zone
from smartbuilding.devices.recorded import (
    EXPECTED_HEADER,
    RecordedBuilding,
    bundled_data_set,
    find_room_files,
)
from smartbuilding.errors import ConfigError, DataSetError
from smartbuilding.keys import QUANTITIES
from support import DATA_SET

GOOD_ROWS = [
    "2013-08-23 23:05:00,494.7,45.33,96.5,0.0,23.92",
    "2013-08-23 23:06:00,496.6,45.32,96.8,0.25,23.93",
    "2013-08-23 23:07:00,498.9,45.32,97.3,1.0,23.94",
]
COLUMN_QUANTITY = {"co2": "co2", "humidity": "humidity", "light": "light", "pir": "occupancy", "temperature": "temperature"}


def write_room(directory: Path, name: str, rows: list[str], header: str = EXPECTED_HEADER) -> Path:
    """Write a room file, gzip-compressed when ``name`` ends in .gz."""
    text = "\n".join([header, *rows]) + "\n"
    path = directory / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def building(directory: Path, *, strict: bool = False, rooms: tuple[str, ...] | None = None,
             zone: str = "America/Los_Angeles") -> RecordedBuilding:
    return RecordedBuilding(directory, LocalTimes(load_zone(zone)), rooms=rooms, strict=strict)


def test_recorded_good_rows(tmp_path: Path) -> None:
    """Good rows come out in order, with ISO times in the recorded zone and float values."""
    write_room(tmp_path, "413.csv.gz", GOOD_ROWS)
    rows = list(building(tmp_path).rows())
    assert [row[2] for row in rows] == [
        "2013-08-23T23:05:00-07:00", "2013-08-23T23:06:00-07:00", "2013-08-23T23:07:00-07:00",
    ]
    assert rows[0][3] == (494.7, 45.33, 96.5, 0.0, 23.92)
    assert rows[1][0] - rows[0][0] == 60.0
    assert {row[1] for row in rows} == {0}


def test_recorded_plain_csv_and_column_order(tmp_path: Path) -> None:
    """A plain .csv file is read too, and value columns may come in any order."""
    write_room(tmp_path, "510.csv", ["2013-08-23 23:05:00,23.5,0.5,400.0,40.0,100.0"],
               header="timestamp,temperature,pir,co2,humidity,light")
    recorded = building(tmp_path)
    assert recorded.room_files[0].quantities == ("temperature", "occupancy", "co2", "humidity", "light")
    assert [row[3] for row in recorded.rows()] == [(23.5, 0.5, 400.0, 40.0, 100.0)]


def test_recorded_rooms_merged_by_time(tmp_path: Path) -> None:
    """Rows of several rooms come out in measured-time order, ties by room."""
    write_room(tmp_path, "413.csv.gz", [GOOD_ROWS[0], GOOD_ROWS[2]])
    write_room(tmp_path, "1001.csv.gz", [GOOD_ROWS[1]])
    write_room(tmp_path, "415.csv.gz", [GOOD_ROWS[0]])
    recorded = building(tmp_path)
    assert [f.room for f in recorded.room_files] == ["413", "415", "1001"]
    order = [(row[2][11:16], recorded.room_files[row[1]].room) for row in recorded.rows()]
    assert order == [("23:05", "413"), ("23:05", "415"), ("23:06", "1001"), ("23:07", "413")]


def test_recorded_rooms_subset(tmp_path: Path) -> None:
    """Only the requested rooms are read, in the order given."""
    for room in ("413", "415", "510"):
        write_room(tmp_path, f"{room}.csv.gz", GOOD_ROWS)
    assert [f.room for f in building(tmp_path, rooms=("510", "413")).room_files] == ["510", "413"]


MALFORMED = [
    ("2013-08-23 23:06:00,496.6,45.32,96.8,0.25", "expected 6 columns"),
    ("2013-08-23 23:06:00,496.6,45.32,96.8,0.25,23.9,7", "found 7"),
    ("2013-08-23 23:06:00,abc,45.32,96.8,0.25,23.93", "co2 value 'abc' is not a number"),
    ("2013-08-23 23:06:00,496.6,,96.8,0.25,23.93", "humidity value '' is not a number"),
    ("2013-08-23 23:06:00,496.6,nan,96.8,0.25,23.93", "humidity value 'nan' is not a finite number"),
    ("2013-08-23 23:06:00,496.6,45.32,inf,0.25,23.93", "light value 'inf' is not a finite number"),
    ("2013-08-23 23:06:00,496.6,45.32,96.8,-0.5,23.93", "pir value '-0.5' is outside the possible range [0, inf] of occupancy"),
    ("2013-08-23 23:06:00,496.6,101,96.8,0.25,23.93", "humidity value '101' is outside the possible range"),
    ("2013-08-23 23:06:00,-1,45.32,96.8,0.25,23.93", "co2 value '-1' is outside the possible range"),
    ("2013-08-23 23:06:00,496.6,45.32,96.8,0.25,-300", "temperature value '-300' is outside the possible range"),
    ("2013-08-23T23:06,496.6,45.32,96.8,0.25,23.93", "is not a local time YYYY-MM-DD HH:MM:SS"),
    ("2013-02-30 23:06:00,496.6,45.32,96.8,0.25,23.93", "is not a local time"),
    ("2013-08-23 23:05:00,496.6,45.32,96.8,0.25,23.93", "is not later than the previous row's"),
    ("2013-08-23 23:04:00,496.6,45.32,96.8,0.25,23.93", "is not later than the previous row's"),
]


@pytest.mark.parametrize(("row", "message"), MALFORMED, ids=[
    "too-few-columns", "too-many-columns", "not-a-number", "empty-value", "nan", "infinity",
    "negative-occupancy", "humidity-above-100", "negative-co2", "below-absolute-zero",
    "iso-timestamp", "impossible-date", "repeated-time", "earlier-time",
])
def test_recorded_malformed_row_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture, row: str, message: str) -> None:
    """A malformed row is skipped whole, counted, and reported with file and line."""
    write_room(tmp_path, "413.csv.gz", [GOOD_ROWS[0], row, GOOD_ROWS[2]])
    recorded = building(tmp_path)
    with caplog.at_level(logging.WARNING):
        rows = list(recorded.rows())
    assert [r[2][11:16] for r in rows] == ["23:05", "23:07"]
    assert recorded.problems.skipped == 1
    assert recorded.problems.per_file == {"413.csv.gz": 1}
    logged = [r.getMessage() for r in caplog.records if "line" in r.getMessage()]
    assert len(logged) == 1
    assert logged[0].startswith("413.csv.gz line 3: ")
    assert message in logged[0]
    assert logged[0].endswith("row skipped")


@pytest.mark.parametrize(("row", "message"), MALFORMED[:3], ids=["too-few-columns", "too-many-columns", "not-a-number"])
def test_recorded_strict_raises(tmp_path: Path, row: str, message: str) -> None:
    """In strict mode the first malformed row raises DataSetError naming file and line."""
    write_room(tmp_path, "413.csv", [GOOD_ROWS[0], row])
    recorded = building(tmp_path, strict=True)
    with pytest.raises(DataSetError) as raised:
        list(recorded.rows())
    assert str(raised.value).startswith("413.csv line 3: ")
    assert message in str(raised.value)


def test_recorded_blank_lines_ignored(tmp_path: Path) -> None:
    """Blank lines are not rows: nothing is skipped or reported."""
    (tmp_path / "413.csv").write_text(f"{EXPECTED_HEADER}\n{GOOD_ROWS[0]}\n\n{GOOD_ROWS[1]}\n\n")
    recorded = building(tmp_path, strict=True)
    assert len(list(recorded.rows())) == 2
    assert recorded.problems.skipped == 0


def test_recorded_problem_logs_limited(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Past ten malformed rows in a file, rows are still counted but no longer logged one by one."""
    bad = [f"2013-08-23 23:{minute:02d}:00,x,45,96,0,23" for minute in range(10, 40)]
    write_room(tmp_path, "413.csv.gz", bad)
    recorded = building(tmp_path)
    with caplog.at_level(logging.WARNING):
        assert list(recorded.rows()) == []
    assert recorded.problems.skipped == 30
    assert sum("row skipped" in r.getMessage() for r in caplog.records) == 10
    assert any("further malformed rows" in r.getMessage() for r in caplog.records)


def test_recorded_truncated_gzip_cut_short(tmp_path: Path) -> None:
    """A gzip file that ends early yields the rows before the damage and is reported as cut short."""
    rows = [f"2013-08-23 {hour:02d}:{minute:02d}:00,500,45,96,0,23" for hour in range(24) for minute in range(60)]
    data = gzip.compress(("\n".join([EXPECTED_HEADER, *rows]) + "\n").encode())
    (tmp_path / "413.csv.gz").write_bytes(data[: len(data) // 2])
    recorded = building(tmp_path)
    played = list(recorded.rows())
    assert 0 < len(played) < len(rows)
    assert recorded.problems.files_cut_short == ["413.csv.gz"]
    with pytest.raises(DataSetError, match=r"413.csv.gz line \d+: cannot read further"):
        list(building(tmp_path, strict=True).rows())


@pytest.mark.parametrize(("header", "message"), [
    ("timestamp,co2,humidity,light,pir", "expected timestamp,co2,humidity,light,pir,temperature"),
    ("timestamp,co2,humidity,light,motion,temperature", "'timestamp,co2,humidity,light,motion,temperature'"),
    ("co2,timestamp,humidity,light,pir,temperature", "the timestamp first"),
    ("timestamp,co2,co2,light,pir,temperature", "expected timestamp"),
], ids=["missing-column", "unknown-column", "timestamp-not-first", "repeated-column"])
def test_recorded_wrong_header(tmp_path: Path, header: str, message: str) -> None:
    """A wrong header is a ConfigError naming the file, before any row is read."""
    path = write_room(tmp_path, "413.csv.gz", GOOD_ROWS, header=header)
    with pytest.raises(ConfigError) as raised:
        building(tmp_path)
    assert str(path) in str(raised.value)
    assert message in str(raised.value)


def test_recorded_empty_file(tmp_path: Path) -> None:
    """An empty room file is a ConfigError naming it."""
    (tmp_path / "413.csv").write_text("")
    with pytest.raises(ConfigError, match=r"413.csv: the file is empty"):
        building(tmp_path)


def test_recorded_unreadable_gzip(tmp_path: Path) -> None:
    """A .gz file that is not gzip is a ConfigError naming it."""
    (tmp_path / "413.csv.gz").write_text(EXPECTED_HEADER)
    with pytest.raises(ConfigError, match=r"413.csv.gz: cannot read the header"):
        building(tmp_path)


def test_recorded_misnamed_room_file_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A CSV file not named after a room number is reported and ignored; other files are ignored silently."""
    write_room(tmp_path, "413.csv.gz", GOOD_ROWS)
    write_room(tmp_path, "lobby.csv.gz", GOOD_ROWS)
    write_room(tmp_path, "41.csv", GOOD_ROWS)
    (tmp_path / "README.md").write_text("notes")
    with caplog.at_level(logging.WARNING):
        files = find_room_files(tmp_path)
    assert [f.room for f in files] == ["413"]
    warnings = [r.getMessage() for r in caplog.records]
    assert any("lobby.csv.gz is ignored" in w for w in warnings)
    assert any("41.csv is ignored" in w for w in warnings)
    assert not any("README" in w for w in warnings)


def test_recorded_directory_errors(tmp_path: Path) -> None:
    """A missing directory, one without room files, or an unknown room is a ConfigError naming the path."""
    with pytest.raises(ConfigError, match="no such directory") as raised:
        find_room_files(tmp_path / "absent")
    assert str(tmp_path / "absent") in str(raised.value)
    with pytest.raises(ConfigError, match="no room files"):
        find_room_files(tmp_path)
    write_room(tmp_path, "413.csv.gz", GOOD_ROWS)
    with pytest.raises(ConfigError, match="no file for room 999: expected 999.csv.gz or 999.csv; rooms present: 413"):
        find_room_files(tmp_path, ["413", "999"])


def test_recorded_two_files_for_one_room(tmp_path: Path) -> None:
    """A room with both a .csv and a .csv.gz file is ambiguous and rejected."""
    write_room(tmp_path, "413.csv.gz", GOOD_ROWS)
    write_room(tmp_path, "413.csv", GOOD_ROWS)
    with pytest.raises(ConfigError, match="room 413 has two files"):
        find_room_files(tmp_path)


def test_recorded_progress_fraction(tmp_path: Path) -> None:
    """The share of bytes read goes from 0 before reading to 1 at the end."""
    write_room(tmp_path, "413.csv.gz", GOOD_ROWS)
    recorded = building(tmp_path)
    assert recorded.fraction_read() == 0.0
    list(recorded.rows())
    assert recorded.fraction_read() == 1.0


def independent_count(path: Path) -> tuple[int, int]:
    """Count the valid and invalid data rows of a bundled room file with gzip and csv only."""
    valid = invalid = 0
    with gzip.open(path, "rt", newline="") as text:
        for record in csv.DictReader(text):
            ok = True
            for column, quantity in COLUMN_QUANTITY.items():
                value = float(record[column])
                limits = QUANTITIES[quantity]
                ok = ok and math.isfinite(value) and limits.minimum <= value <= limits.maximum
            valid += ok
            invalid += not ok
    return valid, invalid


def test_recorded_bundled_rooms_count() -> None:
    """Rooms 413, 415 and 510 of the bundled week yield the rows an independent count finds valid."""
    recorded = building(DATA_SET, rooms=("413", "415", "510"))
    played = list(recorded.rows())
    counts = [independent_count(DATA_SET / f"{room}.csv.gz") for room in ("413", "415", "510")]
    assert len(played) == sum(valid for valid, _ in counts)
    assert recorded.problems.skipped == sum(invalid for _, invalid in counts)
    assert all(played[i][0] <= played[i + 1][0] for i in range(len(played) - 1))


def test_recorded_bundled_data_set_location() -> None:
    """The bundled data set is the package's copy of the SDH week: 45 room files."""
    directory = bundled_data_set()
    assert directory.resolve() == DATA_SET.resolve()
    assert len(find_room_files(directory)) == 45


def test_recorded_header_with_byte_order_mark(tmp_path: Path) -> None:
    """A UTF-8 byte order mark before the header is accepted."""
    buffer = io.StringIO()
    buffer.write("\ufeff" + EXPECTED_HEADER + "\n" + GOOD_ROWS[0] + "\n")
    (tmp_path / "413.csv").write_text(buffer.getvalue(), encoding="utf-8")
    assert len(list(building(tmp_path).rows())) == 1


def test_recorded_invalid_csv_line_skipped(tmp_path: Path) -> None:
    """A line the CSV parser rejects (a field over its size limit) is reported and skipped; later rows are still read."""
    huge = "9" * (csv.field_size_limit() + 1)
    text = f"{EXPECTED_HEADER}\n{GOOD_ROWS[0]}\n2013-08-23 23:06:00,{huge},45,96,0,23\n{GOOD_ROWS[2]}\n"
    (tmp_path / "413.csv").write_text(text)
    recorded = building(tmp_path)
    assert [row[2][11:16] for row in recorded.rows()] == ["23:05", "23:07"]
    assert recorded.problems.skipped == 1
    with pytest.raises(DataSetError, match="413.csv line 3: not valid CSV"):
        list(building(tmp_path, strict=True).rows())
