"""History queries: a ``get`` on any key expression under ``building/`` receives stored readings.

The selector's parameters are ``_time=RANGE`` and ``limit=N``, parsed by
:func:`smartbuilding.timerange.parse_history_parameters`. Storage sends one reply per
stored series whose key intersects the query's key expression and that has readings in
the result. The reply's key is the series key, its encoding
``application/json;smartbuilding.history/1`` and its payload::

    {"schema": "smartbuilding.history/1",
     "key": "building/sdh/floor/4/room/413/temperature",
     "unit": "°C",
     "readings": [["2013-08-25T10:00:00-07:00", 23.1, "sdh-413"], ...]}

Each reading is ``[measured_at, value, device]``, ``measured_at`` in ISO 8601 with the
offset the device used, in measured time order. ``limit`` applies to the whole result:
the first ``limit`` readings in time order across all matched series (ties by series).
Replies are sent in the order of each series' first reading. A client sees that order
only with ``ConsolidationMode.NONE``, because Zenoh's default consolidation of a query
without ``_time`` delays replies and delivers them by key. A query that matches no
stored reading gets no reply. A malformed ``_time`` or ``limit``, or any other
parameter, gets an error reply ``{"error": MESSAGE, "parameter": NAME}``; a database
failure gets ``{"error": MESSAGE}``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timezone

import zenoh

from smartbuilding.errors import InvalidQueryError, StorageError
from smartbuilding.net.session import reply_error
from smartbuilding.storage.backend import HistoryRow, Series, StorageBackend
from smartbuilding.storage.metrics import StorageMetrics
from smartbuilding.storage.times import to_bounds
from smartbuilding.timerange import parse_history_parameters

logger = logging.getLogger(__name__)

SCHEMA = "smartbuilding.history/1"
ENCODING = zenoh.Encoding(f"application/json;{SCHEMA}")


class SeriesDirectory:
    """The committed series and their key expressions, for matching queries from any thread."""

    def __init__(self, series: Sequence[Series] = ()) -> None:
        self._entries: tuple[tuple[Series, zenoh.KeyExpr], ...] = ()
        self._lock = threading.Lock()
        self.add(series)

    def add(self, series: Sequence[Series]) -> None:
        """Add series once they are committed; readers see the old or the new tuple, never a mix."""
        with self._lock:
            self._entries = self._entries + tuple((one, zenoh.KeyExpr(one.name)) for one in series)

    def matching(self, key_expr: zenoh.KeyExpr) -> list[Series]:
        return [series for series, series_expr in self._entries if key_expr.intersects(series_expr)]

    def __len__(self) -> int:
        return len(self._entries)


class HistoryResponder:
    """Responder to history queries, reading through the backend's read connection.

    ``count_tx``, when given, receives the payload bytes of each query's replies, error
    replies included.
    """

    def __init__(self, backend: StorageBackend, directory: SeriesDirectory, metrics: StorageMetrics, *,
                 count_tx: Callable[[int], None] | None = None) -> None:
        self._backend = backend
        self._directory = directory
        self._metrics = metrics
        self._count_tx = count_tx

    def answer(self, query: zenoh.Query) -> None:
        """Reply to one query on a Zenoh thread; every failure becomes an error reply."""
        try:
            sent = self._answer(query)
        except InvalidQueryError as error:
            self._metrics.query_failed()
            sent = reply_error(query, str(error), parameter=error.parameter)
        except StorageError as error:
            self._metrics.query_failed()
            logger.error("failed to reply to the history query %s: %s", query.selector, error)
            sent = reply_error(query, str(error))
        except Exception as error:  # A bug here must not leave the query unanswered or stop the queryable.
            self._metrics.query_failed()
            logger.exception("failed to reply to the history query %s", query.selector)
            sent = reply_error(query, f"storage failed to reply to {query.selector}: {error!r}")
        else:
            self._metrics.query_answered()
        if self._count_tx is not None:
            self._count_tx(sent)

    def _answer(self, query: zenoh.Query) -> int:
        """Send the replies of one query and return their payload bytes."""
        # zenoh's stub declares Parameters.__iter__ as returning a list; it yields (name, value) pairs.
        parameters: dict[str, str] = dict(query.parameters)  # type: ignore[call-overload]
        request = parse_history_parameters(parameters, datetime.now(timezone.utc))
        matched = self._directory.matching(query.key_expr)
        if not matched:
            return 0
        start, end = to_bounds(request.time_range)
        # NOTE: the whole result is read and encoded in memory before the first reply, with no
        # cap: a query of building/** without a limit reads every stored reading (2.4 million
        # for the recorded week).
        rows = self._backend.history([series.id for series in matched], start, end, request.limit)
        if not rows:
            return 0
        by_id = {series.id: series for series in matched}
        groups = [(matched[0].id, [row[2:] for row in rows])] if len(matched) == 1 else group_by_series(rows)
        sent = 0
        for series_id, readings in groups:
            series = by_id[series_id]
            payload = render_series(series, readings)
            query.reply(series.name, payload, encoding=ENCODING)
            sent += len(payload)
        return sent


def group_by_series(rows: list[HistoryRow]) -> list[tuple[int, list[tuple[str, float, str]]]]:
    """Split time-ordered rows by series, in the order of each series' first row."""
    groups: dict[int, list[tuple[str, float, str]]] = {}
    for row in rows:
        readings = groups.get(row[1])
        if readings is None:
            readings = groups[row[1]] = []
        readings.append(row[2:])
    return list(groups.items())


def render_series(series: Series, readings: list[tuple[str, float, str]]) -> bytes:
    """Return the JSON payload of one series' reply."""
    document = {"schema": SCHEMA, "key": series.name, "unit": series.key.unit, "readings": readings}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
