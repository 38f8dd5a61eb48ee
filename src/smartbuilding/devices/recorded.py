"""A recorded building on disk: one CSV file per room, read row by row in time order.

Layout of a data set directory (the bundled one is :func:`bundled_data_set`):

- one file per room, named after the room number: ``413.csv.gz`` or ``413.csv``;
- a header ``timestamp,co2,humidity,light,pir,temperature``: the timestamp first, the
  five value columns in any order;
- then one row per measured time, in increasing time order, the timestamp in local time
  ``YYYY-MM-DD HH:MM:SS``.

Files that do not end in ``.csv`` or ``.csv.gz``, such as a README, are ignored. A CSV
file whose name is not a room number is reported, then ignored. A wrong header or a missing
room file is a :class:`ConfigError`, found before any row is read.

A malformed row skips the whole row, so no reading of it is played: wrong column count,
a value that is not a finite number or lies outside its quantity's possible range
(:data:`smartbuilding.keys.QUANTITIES`), a timestamp that does not parse or does not exist,
or one not later than the previous row of the same file. Each is reported as
``413.csv.gz line 57: ...`` and counted; in strict mode the first one raises
:class:`DataSetError` instead. Blank lines are not rows and are passed over silently.
"""

from __future__ import annotations

import csv
import gzip
import heapq
import importlib.resources
import io
import logging
import re
import sys
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from operator import le
from pathlib import Path
from typing import BinaryIO, Protocol

from smartbuilding.devices.local_time import Instant, LocalTimes
from smartbuilding.errors import ConfigError, DataSetError
from smartbuilding.keys import QUANTITIES

logger = logging.getLogger(__name__)

TIMESTAMP_COLUMN = "timestamp"
# CSV column -> quantity of the key space. The PIR column is the share of the minute
# in which motion was seen, which the key space calls occupancy.
QUANTITY_OF_COLUMN: dict[str, str] = {
    "co2": "co2",
    "humidity": "humidity",
    "light": "light",
    "pir": "occupancy",
    "temperature": "temperature",
}
EXPECTED_HEADER = ",".join((TIMESTAMP_COLUMN, *QUANTITY_OF_COLUMN))

_ROOM_FILE = re.compile(r"^(?P<room>\d{3,})\.csv(?:\.gz)?$")
_CSV_FILE = re.compile(r"\.csv(?:\.gz)?$")
# Errors after which a compressed or text stream cannot be read any further.
_STREAM_ERRORS = (OSError, EOFError, zlib.error, UnicodeDecodeError)

# One played row: (seconds since the epoch, index of the room file, measured time as
# ISO 8601 with offset, the values in the file's column order). A plain tuple, because
# half a million of them are built and compared per recorded week.
RecordedRow = tuple[float, int, str, tuple[float, ...]]


def bundled_data_set() -> Path:
    """Return the directory of the recorded building shipped with the package (SDH, 2013)."""
    directory = importlib.resources.files("smartbuilding") / "datasets" / "sdh-2013"
    if not isinstance(directory, Path):
        raise DataSetError(
            "the bundled data set is inside a zip archive and cannot be read as a directory; "
            "install smartbuilding as files (pip install, not a zipapp) or pass DIR"
        )
    return directory


@dataclass(frozen=True)
class RoomFile:
    """The recording of one room: its file and its value columns in file order."""

    room: str
    path: Path
    columns: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def quantities(self) -> tuple[str, ...]:
        return tuple(QUANTITY_OF_COLUMN[column] for column in self.columns)


def find_room_files(directory: Path, rooms: Sequence[str] | None = None) -> list[RoomFile]:
    """Return the room files of ``directory`` (only ``rooms`` when given), headers checked."""
    found = _room_paths(directory)
    if rooms is None:
        selected = sorted(found, key=lambda room: (len(room), room))
    else:
        selected = list(dict.fromkeys(rooms))
        missing = [room for room in selected if room not in found]
        if missing:
            raise ConfigError(
                f"no file for room {', '.join(missing)}: expected {missing[0]}.csv.gz or {missing[0]}.csv; "
                f"rooms present: {', '.join(sorted(found)) or 'none'}",
                source=str(directory),
            )
    return [RoomFile(room=room, path=found[room], columns=read_header(found[room])) for room in selected]


def _room_paths(directory: Path) -> dict[str, Path]:
    try:
        entries = sorted(directory.iterdir())
    except FileNotFoundError:
        raise ConfigError("no such directory; give the directory of a recorded building", source=str(directory)) from None
    except OSError as error:
        raise ConfigError(f"cannot list the directory: {error.strerror or error}", source=str(directory)) from error
    found: dict[str, Path] = {}
    for path in entries:
        match = _ROOM_FILE.match(path.name)
        if match is None:
            if _CSV_FILE.search(path.name):
                logger.warning(
                    "%s is ignored: a room file is named after its room number, such as 413.csv.gz", path
                )
            continue
        room = match.group("room")
        if room in found:
            raise ConfigError(f"room {room} has two files, {found[room].name} and {path.name}; keep one",
                              source=str(directory))
        found[room] = path
    if not found:
        raise ConfigError("no room files (such as 413.csv.gz or 413.csv) in this directory", source=str(directory))
    return found


def read_header(path: Path) -> tuple[str, ...]:
    """Return the value columns of a room file's header, or raise :class:`ConfigError`."""
    try:
        with open_room_text(path)[1] as text:
            header = next(csv.reader(text), None)
    except (*_STREAM_ERRORS, csv.Error) as error:
        raise ConfigError(f"cannot read the header: {error}", source=str(path)) from error
    if header is None:
        raise ConfigError(f"the file is empty; expected the header {EXPECTED_HEADER}", source=str(path))
    names = tuple(name.strip() for name in header)
    if names[:1] != (TIMESTAMP_COLUMN,) or sorted(names[1:]) != sorted(QUANTITY_OF_COLUMN):
        raise ConfigError(
            f"the header is {','.join(header)!r}; expected {EXPECTED_HEADER} "
            "(the timestamp first, the other columns in any order)",
            source=str(path),
        )
    return names[1:]


def open_room_text(path: Path) -> tuple[BinaryIO, io.TextIOWrapper]:
    """Open a room file as text; also return the decompressed stream, whose position shows the progress.

    The decompressed position moves by the text reader's read-ahead (8 KiB, under a hundred
    rows); the compressed file's own position moves by much larger steps.
    """
    # Opened by name, a GzipFile closes the file it opened when the text wrapper closes it.
    binary: BinaryIO = gzip.GzipFile(path, mode="rb") if path.name.endswith(".gz") else path.open("rb")  # type: ignore[assignment]
    return binary, io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")


def text_size(path: Path) -> int:
    """Return the decompressed size of a room file, from the gzip trailer for a .gz file.

    The trailer holds the size modulo 2**32, which is exact for room files under 4 GiB.
    """
    if not path.name.endswith(".gz"):
        return path.stat().st_size
    with path.open("rb") as handle:
        handle.seek(0, io.SEEK_END)
        if handle.tell() < 4:
            return 0
        handle.seek(-4, io.SEEK_END)
        return int.from_bytes(handle.read(4), "little")


class RowProblems:
    """Counter and reporter of malformed rows; strict mode raises on the first one."""

    LOGGED_PER_FILE = 10

    def __init__(self, *, strict: bool) -> None:
        self.strict = strict
        self.skipped = 0
        self.per_file: dict[str, int] = {}
        self.files_cut_short: list[str] = []

    def report(self, file_name: str, line: int, message: str) -> None:
        """Count a skipped row and log it, or raise :class:`DataSetError` in strict mode."""
        if self.strict:
            raise DataSetError(f"{file_name} line {line}: {message} (--strict stops at the first malformed row)")
        self.skipped += 1
        count = self.per_file[file_name] = self.per_file.get(file_name, 0) + 1
        if count <= self.LOGGED_PER_FILE:
            logger.warning("%s line %d: %s; row skipped", file_name, line, message)
        if count == self.LOGGED_PER_FILE:
            logger.warning("%s: further malformed rows are skipped and counted without a log line each", file_name)

    def cut_short(self, file_name: str, line: int, error: BaseException) -> None:
        """Report a file that cannot be read past ``line``; strict mode raises."""
        message = f"{file_name} line {line}: cannot read further ({error})"
        if self.strict:
            raise DataSetError(message)
        self.files_cut_short.append(file_name)
        logger.error("%s; the rest of this room file is skipped", message)


class _CsvReader(Protocol):
    line_num: int

    def __iter__(self) -> Iterator[list[str]]: ...

    def __next__(self) -> list[str]: ...


def _bounds(quantity: str) -> tuple[float, float]:
    # Infinite ends become the largest finite floats, so that one chained comparison
    # rejects infinities and NaN (every comparison with NaN is false) as well.
    limits = QUANTITIES[quantity]
    return max(limits.minimum, -sys.float_info.max), min(limits.maximum, sys.float_info.max)


class RoomStream:
    """The valid rows of one room file, in file order, as :data:`RecordedRow` tuples."""

    def __init__(self, room_file: RoomFile, index: int, times: LocalTimes, problems: RowProblems) -> None:
        self.room_file = room_file
        self.index = index
        self.times = times
        self.problems = problems
        self.size = text_size(room_file.path)
        bounds = [_bounds(quantity) for quantity in room_file.quantities]
        self._lows = tuple(low for low, _ in bounds)
        self._highs = tuple(high for _, high in bounds)
        self._text_source: BinaryIO | None = None  # the decompressed stream, for its position
        self._finished = False
        self._previous: Instant | None = None

    def position(self) -> int:
        """Return how many decompressed bytes of the file have been read so far."""
        if self._finished or self._text_source is None:
            return self.size if self._finished else 0
        try:
            return self._text_source.tell()
        except ValueError:  # Closed between the check and the call.
            return self.size

    def __iter__(self) -> Iterator[RecordedRow]:
        try:
            decompressed, text = open_room_text(self.room_file.path)
        except OSError as error:
            self.problems.cut_short(self.room_file.name, 1, error)
            self._finished = True
            return
        self._text_source = decompressed
        with text:
            reader = csv.reader(text)
            next(reader, None)  # The header, checked by find_room_files.
            while True:
                try:
                    yield from self._parse(reader)
                    break
                except csv.Error as error:
                    self.problems.report(self.room_file.name, reader.line_num, f"not valid CSV: {error}")
                except _STREAM_ERRORS as error:
                    self.problems.cut_short(self.room_file.name, reader.line_num, error)
                    break
        self._finished = True

    def _parse(self, reader: _CsvReader) -> Iterator[RecordedRow]:
        # The hot loop of a replay, about half a million rows a week. A valid row costs
        # one dictionary lookup, one map(float) and two map(le). A failing row is checked
        # again, slowly, by _reject, which finds exactly what is wrong.
        cached = self.times.cache.get
        convert = self.times.convert
        lows, highs, index = self._lows, self._highs, self.index
        previous = self._previous.epoch if self._previous else -1.0e300
        for row in reader:
            try:
                instant = cached(row[0]) or convert(row[0])
                values = tuple(map(float, row[1:]))
            except (ValueError, IndexError):
                values = ()
            if len(values) != len(lows) or not (all(map(le, lows, values)) and all(map(le, values, highs))):
                self._reject(row, reader.line_num)
                continue
            if instant.epoch <= previous:
                later = self._out_of_order(row[0], instant, reader.line_num)
                if later is None:
                    continue
                instant = later
            previous = instant.epoch
            self._previous = instant
            yield (instant.epoch, index, instant.iso, values)

    def _out_of_order(self, text: str, instant: Instant, line: int) -> Instant | None:
        assert self._previous is not None
        later = self.times.second_occurrence(text)
        if later is not None and later.epoch > self._previous.epoch:
            return later  # The repeated hour after clocks went back.
        self.problems.report(
            self.room_file.name, line,
            f"timestamp {text!r} ({instant.iso}) is not later than the previous row's ({self._previous.iso}); "
            "rows of a room must be in increasing time order",
        )
        return None

    def _reject(self, row: list[str], line: int) -> None:
        if not row or row == [""]:
            return
        self.problems.report(self.room_file.name, line, self._diagnose(row))

    def _diagnose(self, row: list[str]) -> str:
        columns = self.room_file.columns
        if len(row) != len(columns) + 1:
            return f"expected {len(columns) + 1} columns ({TIMESTAMP_COLUMN},{','.join(columns)}), found {len(row)}"
        try:
            self.times.cache.get(row[0]) or self.times.convert(row[0])
        except ValueError as error:
            return str(error)
        for column, quantity, text in zip(columns, self.room_file.quantities, row[1:]):
            problem = value_problem(column, quantity, text)
            if problem:
                return problem
        return f"row {row!r} was rejected"


def value_problem(column: str, quantity: str, text: str) -> str | None:
    """Return what is wrong with the text of one value, or None when it is a valid reading."""
    try:
        value = float(text)
    except ValueError:
        return f"{column} value {text!r} is not a number"
    if value != value or value in (float("inf"), float("-inf")):
        return f"{column} value {text!r} is not a finite number"
    low, high = _bounds(quantity)
    if not low <= value <= high:
        limits = QUANTITIES[quantity]
        return (
            f"{column} value {text!r} is outside the possible range "
            f"[{limits.minimum:g}, {limits.maximum:g}] of {quantity}"
        )
    return None


class RecordedBuilding:
    """The rooms of a data set directory, read together as one stream in measured-time order."""

    def __init__(self, directory: Path, times: LocalTimes, *, rooms: Sequence[str] | None = None,
                 strict: bool = False) -> None:
        self.directory = directory
        self.room_files = find_room_files(directory, rooms)
        self.problems = RowProblems(strict=strict)
        self.streams = [RoomStream(room_file, index, times, self.problems)
                        for index, room_file in enumerate(self.room_files)]
        self.total_bytes = sum(stream.size for stream in self.streams)

    def rows(self) -> Iterator[RecordedRow]:
        """Yield every valid row of every room, ordered by measured time, then by room."""
        return heapq.merge(*self.streams)

    def fraction_read(self) -> float:
        """Return the share of the data set's decompressed bytes read so far, from 0 to 1."""
        if self.total_bytes == 0:
            return 1.0
        return sum(stream.position() for stream in self.streams) / self.total_bytes
