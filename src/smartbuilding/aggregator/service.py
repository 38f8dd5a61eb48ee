"""The aggregator service: rolling aggregates of every room, floor and building.

Delivery contract. Each aggregator (primary or standby) subscribes to ``building/**`` on
its own and folds every valid reading into its state, so both hold the same aggregates
and the standby answers at once when the primary is gone. Nothing is persisted: an
aggregator that restarts begins empty and fills again from new readings (its windows are
complete again after the longest window has passed in measured time). Readings are taken
from the subscriber's channel as fast as they are aggregated; a full channel makes Zenoh
wait, so publishers using blocking congestion control slow down rather than lose
readings. Invalid readings are counted by reason and ignored, as storage does.

Queries on ``services/aggregator/{role}`` take ``scope``, ``quantity``, ``window`` and
optionally ``at`` (end of the window, ISO 8601; the newest reading's bucket by default)
and get one JSON reply, or an error reply naming the bad parameter. Status is on
``services/aggregator-{role}/status``.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import zenoh

from smartbuilding import keys
from smartbuilding.aggregator.state import DEFAULT_WINDOWS, Aggregate, AggregateState
from smartbuilding.config import Settings
from smartbuilding.errors import InvalidQueryError, InvalidReadingError
from smartbuilding.ingest.decoding import KeyDecoder, PayloadDecoder
from smartbuilding.ingest.rejections import RejectionLog
from smartbuilding.net.session import open_session, reply_error, reply_json
from smartbuilding.net.status import ProcessFacts, serve_status
from smartbuilding.rates import RateMeter
from smartbuilding.timerange import parse_instant

logger = logging.getLogger(__name__)

SCHEMA = "smartbuilding.aggregate/1"
CHANNEL_CAPACITY = 65536
CHUNK_SIZE = 2048
STATUS_LOG_INTERVAL = 30.0


@dataclass(frozen=True)
class AggregatorOptions:
    role: str = "primary"
    windows: tuple[str, ...] = DEFAULT_WINDOWS
    retention_seconds: int | None = None


class AggregatorCounters:
    """Counts of the aggregator's work, written by the intake and query threads."""

    def __init__(self) -> None:
        self.received = 0
        self.aggregated = 0
        self.queries_answered = 0
        self.queries_failed = 0
        self._meter = RateMeter(time.monotonic())
        self._meter_lock = threading.Lock()

    def rate(self) -> float:
        """Return the readings aggregated per second over the last :data:`~smartbuilding.rates.RATE_WINDOW_S` seconds."""
        now = time.monotonic()
        with self._meter_lock:
            self._meter.record(now, self.aggregated)
            return self._meter.rate(now, self.aggregated)


class Aggregator:
    """One running aggregator: subscriber, intake thread, query and status answers."""

    def __init__(self, settings: Settings, options: AggregatorOptions) -> None:
        keys.validate_name("role", options.role)
        self.options = options
        self.state = AggregateState(options.windows, options.retention_seconds)
        self.counters = AggregatorCounters()
        self.facts = ProcessFacts(f"aggregator-{options.role}")
        self.rejections = RejectionLog()
        self._decoders = PayloadDecoder()
        self._lock = threading.Lock()
        self.session = open_session(settings)
        self._subscriber = self.session.declare_subscriber(keys.READINGS, zenoh.handlers.FifoChannel(CHANNEL_CAPACITY))
        self._intake = threading.Thread(target=self._run_intake, name=f"aggregator-{options.role}-intake")
        self._intake.start()
        self._queryable = self.session.declare_queryable(keys.aggregator(options.role), self._answer)
        self._status = serve_status(self.session, f"aggregator-{options.role}", self.status, facts=self.facts)
        logger.info("aggregator %s keeps windows %s over %d s of measured time",
                    options.role, ", ".join(options.windows), self.state.retention_seconds)

    def _run_intake(self) -> None:
        channel = self._subscriber.handler
        while True:
            try:
                chunk = [channel.recv()]
                while len(chunk) < CHUNK_SIZE and (sample := channel.try_recv()) is not None:
                    chunk.append(sample)
            except zenoh.ZError:
                return  # The subscriber was undeclared and its channel is empty.
            self._aggregate(chunk)

    def _aggregate(self, chunk: list[zenoh.Sample]) -> None:
        groups: dict[KeyDecoder, list[tuple[int, float]]] = {}
        payload_bytes = 0
        for sample in chunk:
            payload = sample.payload.to_bytes()
            payload_bytes += len(payload)
            try:
                decoder = self._decoders.decoder_of(str(sample.key_expr))
                measured_at, _offset, value, _device = decoder.decode(payload)
            except InvalidReadingError as error:
                self.rejections.reject(error.reason, str(error))
                continue
            group = groups.get(decoder)
            if group is None:
                group = groups[decoder] = []
            group.append((measured_at, value))
        self.facts.count_rx(payload_bytes)
        with self._lock:
            for decoder, readings in groups.items():
                self.state.add_group(decoder.reading_key, readings)
            self.counters.received += len(chunk)
            self.counters.aggregated += sum(len(readings) for readings in groups.values())

    def _answer(self, query: zenoh.Query) -> None:
        parameters = dict(query.parameters)
        try:
            aggregate = self._query(parameters)
        except InvalidQueryError as error:
            self.counters.queries_failed += 1
            self.facts.count_tx(reply_error(query, str(error), parameter=error.parameter))
            return
        self.counters.queries_answered += 1
        self.facts.count_tx(reply_json(query, self._document(aggregate), keys.aggregator(self.options.role)))

    def _query(self, parameters: dict[str, str]) -> Aggregate:
        unknown = set(parameters) - {"scope", "quantity", "window", "at"}
        if unknown:
            name = sorted(unknown)[0]
            raise InvalidQueryError(name, f"unknown parameter {name!r}; aggregate queries take scope, quantity, window, at")
        for required in ("scope", "quantity", "window"):
            if not parameters.get(required):
                raise InvalidQueryError(required, f"missing parameter {required!r}")
        end = None
        if parameters.get("at"):
            end = parse_instant(parameters["at"], datetime.now(timezone.utc), parameter="at").timestamp()
        with self._lock:
            return self.state.query(parameters["scope"], parameters["quantity"], parameters["window"], end)

    def _document(self, aggregate: Aggregate) -> dict[str, Any]:
        stats = aggregate.stats
        return {
            "schema": SCHEMA,
            "role": self.options.role,
            "scope": aggregate.scope,
            "quantity": aggregate.quantity,
            "unit": keys.QUANTITIES[aggregate.quantity].unit,
            "window": aggregate.window,
            "start": _iso(stats.start),
            "end": _iso(stats.end),
            "complete": stats.complete,
            "count": stats.count,
            "mean": stats.mean,
            "min": stats.minimum,
            "max": stats.maximum,
            "latest": {"value": aggregate.latest_value, "measured_at": _iso(aggregate.latest_time)},
            "late_readings": aggregate.late,
        }

    def status(self) -> dict[str, Any]:
        with self._lock:
            series = len(self.state.scopes())
        return {
            "role": self.options.role,
            "windows": list(self.options.windows),
            "readings_received": self.counters.received,
            "readings_aggregated": self.counters.aggregated,
            "aggregate_rate": round(self.counters.rate(), 1),
            "scopes": series,
            "rejected": self.rejections.counts(),
            "queries_answered": self.counters.queries_answered,
            "queries_failed": self.counters.queries_failed,
        }

    def close(self) -> None:
        self._subscriber.undeclare()
        self._intake.join(timeout=30)
        self._queryable.undeclare()
        self._status.undeclare()
        self.session.close()
        logger.info("aggregator %s stopped after %d readings", self.options.role, self.counters.aggregated)


def _iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat() if epoch is not None else None


def run_aggregator(settings: Settings, options: AggregatorOptions) -> int:
    """Run an aggregator until SIGTERM or SIGINT, then close it cleanly."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    aggregator = Aggregator(settings, options)
    try:
        while not stop.wait(STATUS_LOG_INTERVAL):
            logger.info("aggregator %s: %d readings aggregated, %.0f/s", options.role,
                        aggregator.counters.aggregated, aggregator.counters.rate())
    finally:
        aggregator.close()
    return 0
