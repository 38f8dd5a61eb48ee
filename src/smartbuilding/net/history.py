"""The client of history queries: the stored readings of a key expression over a time range.

A history query is a get on a key expression under ``building/`` with the selector
parameters ``_time=[FROM..TO]`` and ``limit=N`` (see :mod:`smartbuilding.timerange`).
Storage sends one reply per matching series, with the encoding
``application/json;smartbuilding.history/1``::

    {"schema": "smartbuilding.history/1",
     "key": "building/sdh/floor/4/room/413/temperature",
     "unit": "°C",
     "readings": [["2013-08-25T10:00:00-07:00", 23.1, "sdh-413"], ...]}

Each reading is ``[measured_at, value, device]``, in time order. A rejected query gets
an error reply ``{"error": MESSAGE, "parameter": NAME}``. When several storage replicas
reply for the same series, their readings are merged and each (key, measured_at) is
kept once.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

import zenoh

from smartbuilding.errors import (
    InvalidKeyError,
    InvalidQueryError,
    ServiceUnavailableError,
    SmartBuildingError,
)
from smartbuilding.keys import QUANTITIES
from smartbuilding.timerange import TimeRange, history_parameters

logger = logging.getLogger(__name__)

SCHEMA = "smartbuilding.history/1"
ENCODING = f"application/json;{SCHEMA}"
DEFAULT_TIMEOUT = 10.0
READINGS_ROOT = "building"


class HistoryReplyError(SmartBuildingError):
    """A history reply that does not follow the history schema, or an error reply without a parameter."""


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One stored reading of a series."""

    key: str
    measured_at: datetime
    value: float
    unit: str
    device: str

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "measured_at": self.measured_at.isoformat(),
            "value": self.value,
            "unit": self.unit,
            "device": self.device,
        }


@dataclass(frozen=True)
class HistorySeries:
    """The stored readings of one key, in time order."""

    key: str
    unit: str
    rows: tuple[HistoryRow, ...]


def validate_history_key(key_expr: str) -> str:
    """Return ``key_expr`` when it is a valid Zenoh key expression under ``building/``."""
    try:
        canonical = str(zenoh.KeyExpr(key_expr))
    except zenoh.ZError as error:
        # Zenoh appends the Rust source location (" at /path/file.rs:123."); keep the reason only.
        reason = str(error).split(" at /", 1)[0]
        raise InvalidKeyError(f"invalid key expression {key_expr!r}: {reason}") from None
    chunks = canonical.split("/")
    if chunks[0] != READINGS_ROOT or len(chunks) < 2:
        raise InvalidKeyError(
            f"key expression {key_expr!r} is outside the readings: history is stored only for keys under "
            f"{READINGS_ROOT}/, such as building/sdh/floor/4/room/413/temperature or building/sdh/**"
        )
    quantity = chunks[6] if len(chunks) == 7 and chunks[2] == "floor" and chunks[4] == "room" else None
    if quantity is not None and not any(mark in quantity for mark in "*$") and quantity not in QUANTITIES:
        # Storage would match nothing and reply nothing, which reads like an empty history.
        raise InvalidKeyError(
            f"unknown quantity {quantity!r} in {key_expr!r}; known quantities: {', '.join(QUANTITIES)}"
        )
    return canonical


def fetch_history(
    session: zenoh.Session,
    key_expr: str,
    time_range: TimeRange | None = None,
    limit: int | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[HistorySeries]:
    """Query the stored history of ``key_expr`` and return one series per key, sorted by key.

    Raises :class:`InvalidQueryError` (its ``parameter`` set) when storage rejects the
    query, :class:`HistoryReplyError` for a reply outside the history schema, and
    :class:`ServiceUnavailableError` when no storage serves ``key_expr``.
    """
    key_expr = validate_history_key(key_expr)
    parameters = history_parameters(time_range, limit)
    # After the query, the querier reports whether any queryable matched. That separates
    # "storage has no readings for this key" (no reply, but a match) from "no storage".
    querier = session.declare_querier(key_expr, timeout=timeout, consolidation=zenoh.ConsolidationMode.NONE)
    try:
        replies = list(querier.get(parameters=parameters) if parameters else querier.get())
        matched = _matching(querier)
    finally:
        querier.undeclare()

    series = [_series_of(key_expr, reply) for reply in replies]
    if not series and not matched:
        raise ServiceUnavailableError(
            f"no storage replied to the history query for {key_expr} within {timeout:g} s; "
            "check that a storage service runs with `smartbuilding status`"
        )
    logger.debug("history of %s (%s): %d replies", key_expr, parameters or "no parameters", len(series))
    return merge_replicas(series)


def _matching(querier: zenoh.Querier) -> bool:
    # The stubs of eclipse-zenoh 1.10.2 declare a bool, but the property returns a
    # MatchingStatus object whose ``matching`` attribute is the bool.
    status: object = querier.matching_status
    return bool(getattr(status, "matching", status))


def _series_of(key_expr: str, reply: zenoh.Reply) -> HistorySeries:
    sample = reply.ok
    if sample is None:
        error = reply.err
        raise_reply_error(key_expr, error.payload.to_bytes() if error is not None else b"")
    return parse_series(str(sample.key_expr), sample.payload.to_bytes())


def raise_reply_error(key_expr: str, payload: bytes) -> NoReturn:
    """Raise the exception that matches an error reply to a history query."""
    text = payload.decode(errors="replace")
    try:
        document = json.loads(payload)
    except ValueError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("error"), str):
        parameter = document.get("parameter")
        if isinstance(parameter, str) and parameter:
            raise InvalidQueryError(
                parameter, f"storage rejected the history query for {key_expr} (parameter {parameter}): {document['error']}"
            )
        raise HistoryReplyError(f"storage failed to reply to the history query for {key_expr}: {document['error']}")
    if text == "Timeout":
        raise ServiceUnavailableError(
            f"the history query for {key_expr} timed out before storage sent every reply; "
            "narrow the time range or allow a longer timeout"
        )
    raise HistoryReplyError(f"storage failed to reply to the history query for {key_expr}: {text[:200]}")


def parse_series(key: str, payload: bytes) -> HistorySeries:
    """Decode one history reply received on ``key``, raising :class:`HistoryReplyError` naming what is wrong."""
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        raise HistoryReplyError(f"history reply on {key} is not JSON: {payload[:60]!r}") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        found = document.get("schema") if isinstance(document, dict) else type(document).__name__
        raise HistoryReplyError(f"history reply on {key} has schema {found!r}, expected {SCHEMA!r}")
    if document.get("key", key) != key:
        raise HistoryReplyError(f"history reply on {key} carries the readings of another key, {document.get('key')!r}")
    unit = document.get("unit")
    readings = document.get("readings")
    if not isinstance(unit, str) or not isinstance(readings, list):
        raise HistoryReplyError(f"history reply on {key} needs a string 'unit' and a list 'readings'")
    rows = tuple(_parse_row(key, unit, index, reading) for index, reading in enumerate(readings))
    return HistorySeries(key=key, unit=unit, rows=rows)


def _parse_row(key: str, unit: str, index: int, reading: object) -> HistoryRow:
    where = f"reading {index} of the history reply on {key}"
    if not isinstance(reading, list) or len(reading) != 3:
        raise HistoryReplyError(f"{where} is {reading!r}, expected [measured_at, value, device]")
    measured_text, value, device = reading
    try:
        measured_at = datetime.fromisoformat(measured_text) if isinstance(measured_text, str) else None
    except ValueError:
        measured_at = None
    if measured_at is None or measured_at.tzinfo is None:
        raise HistoryReplyError(f"{where} has measured_at {measured_text!r}, expected ISO 8601 with a UTC offset")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise HistoryReplyError(f"{where} has value {value!r}, expected a finite number")
    if not isinstance(device, str):
        raise HistoryReplyError(f"{where} has device {device!r}, expected a string")
    return HistoryRow(key=key, measured_at=measured_at, value=float(value), unit=unit, device=device)


def merge_replicas(series: Iterable[HistorySeries]) -> list[HistorySeries]:
    """Merge the series of the same key from several replicas, each reading once, in time order."""
    by_key: dict[str, dict[datetime, HistoryRow]] = {}
    units: dict[str, str] = {}
    for one in series:
        units.setdefault(one.key, one.unit)
        rows = by_key.setdefault(one.key, {})
        for row in one.rows:
            rows.setdefault(row.measured_at, row)
    return [
        HistorySeries(key=key, unit=units[key], rows=tuple(sorted(by_key[key].values(), key=lambda row: row.measured_at)))
        for key in sorted(by_key)
    ]


def merge_rows(series: Iterable[HistorySeries], limit: int | None = None) -> list[HistoryRow]:
    """Return the readings of every series in one list, in time order then by key, the first ``limit`` of them."""
    rows = [row for one in series for row in one.rows]
    rows.sort(key=lambda row: (row.measured_at, row.key))
    return rows if limit is None else rows[:limit]
