"""Intake: samples from the subscriber's channel to rows in the reading queue.

Decoding and validation are those of :mod:`smartbuilding.ingest.decoding`, which accepts
and rejects exactly what :func:`smartbuilding.readings.decode` does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

import zenoh

from smartbuilding import readings
from smartbuilding.errors import InvalidReadingError
from smartbuilding.ingest.decoding import KeyDecoder
from smartbuilding.ingest.rejections import RejectionLog
from smartbuilding.keys import ReadingKey
from smartbuilding.storage.backend import Batch, Row, Series
from smartbuilding.storage.metrics import StorageMetrics
from smartbuilding.storage.queue import ReadingQueue

logger = logging.getLogger(__name__)

# Maximum samples taken from the channel into one batch.
CHUNK_SIZE = 2048
# One sample in this many (and the first of each chunk) gives its Zenoh timestamp to the
# commit latency. Reading the timestamp of every sample would slow intake for no gain.
STAMP_EVERY = 64


class SeriesDecoder:
    """Decodes the payloads of one reading key into rows of its series."""

    __slots__ = ("series_id", "_decoder")

    def __init__(self, key: str, series: Series, times: dict[bytes, tuple[int, int]]) -> None:
        self.series_id = series.id
        self._decoder = KeyDecoder(key, times)

    def decode(self, payload: bytes) -> Row:
        """Return the row of ``payload`` or raise :class:`InvalidReadingError` as decode() does."""
        measured_at, utc_offset, value, device = self._decoder.decode(payload)
        return (self.series_id, measured_at, utc_offset, value, device)


class SeriesCatalog:
    """Series ids by key: the stored ones plus those created since, owned by the intake thread."""

    def __init__(self, stored: Iterable[Series]) -> None:
        self._by_key = {series.name: series for series in stored}
        self._next_id = max((series.id for series in self._by_key.values()), default=0) + 1
        self._pending: list[Series] = []

    def resolve(self, key: ReadingKey) -> Series:
        """Return the series of ``key``, creating one that the next batch stores when it is new."""
        name = str(key)
        series = self._by_key.get(name)
        if series is None:
            series = Series(self._next_id, key)
            self._next_id += 1
            self._by_key[name] = series
            self._pending.append(series)
        return series

    def take_new(self) -> list[Series]:
        new, self._pending = self._pending, []
        return new


class Intake:
    """Drains the subscriber's channel, turns samples into rows, and feeds the reading queue.

    :meth:`run` returns once the channel is closed (the subscriber was undeclared) and
    everything it held was queued; it then closes the queue. ``count_rx``, when given,
    receives the payload bytes of each chunk of samples, rejected ones included.
    """

    def __init__(
        self,
        channel: zenoh.handlers.Handler[zenoh.Sample],
        catalog: SeriesCatalog,
        queue: ReadingQueue,
        metrics: StorageMetrics,
        rejections: RejectionLog,
        *,
        count_rx: Callable[[int], None] | None = None,
    ) -> None:
        self._channel = channel
        self._count_rx = count_rx
        self._catalog = catalog
        self._queue = queue
        self._metrics = metrics
        self._rejections = rejections
        self._decoders: dict[str, SeriesDecoder] = {}
        self._times: dict[bytes, tuple[int, int]] = {}
        self._bugs_logged: set[type[Exception]] = set()
        # Monotonic time since which run() has waited for the channel with nothing to do; None while it works.
        self.waiting_since: float | None = None

    def run(self) -> None:
        try:
            while True:
                chunk = self._next_chunk()
                if chunk is None:
                    break
                batch = self.convert(chunk)
                if batch.rows or batch.series:
                    self._queue.put(batch)
        finally:
            self._queue.close()

    def _next_chunk(self) -> list[zenoh.Sample] | None:
        """Wait for a sample, then take what else is ready, up to :data:`CHUNK_SIZE`; None when closed."""
        channel = self._channel
        self.waiting_since = time.monotonic()
        try:
            first = channel.recv()
        except zenoh.ZError:
            # Raised once the subscriber is undeclared and the channel is empty.
            return None
        self.waiting_since = None
        chunk = [first]
        try:
            while len(chunk) < CHUNK_SIZE:
                sample = channel.try_recv()
                if sample is None:
                    break
                chunk.append(sample)
        except zenoh.ZError:
            pass  # The channel closed; the next recv() ends the intake.
        return chunk

    def convert(self, samples: list[zenoh.Sample]) -> Batch:
        """Decode ``samples`` into a batch, counting and logging the rejected ones."""
        rows: list[Row] = []
        sent_at: list[float] = []
        decoders = self._decoders
        payload_bytes = 0
        for index, sample in enumerate(samples):
            key = str(sample.key_expr)
            payload = sample.payload.to_bytes()
            payload_bytes += len(payload)
            try:
                decoder = decoders.get(key) or self._new_decoder(key)
                rows.append(decoder.decode(payload))
            except InvalidReadingError as error:
                self._rejections.reject(error.reason, str(error))
                continue
            except Exception as error:  # A decoding bug must not stop the intake of good readings.
                self._log_bug(key, error)
                self._rejections.reject("decoder_error", f"payload on {key}: {error!r}")
                continue
            if index % STAMP_EVERY == 0:
                stamp = sample.timestamp
                if stamp is not None:
                    sent_at.append(stamp.get_time_as_ntp64().as_secs_f64())
        self._metrics.received += len(samples)
        if self._count_rx is not None:
            self._count_rx(payload_bytes)
        return Batch(series=self._catalog.take_new(), rows=rows, sent_at=sent_at)

    def _log_bug(self, key: str, error: Exception) -> None:
        # The traceback once per exception type; the rejection log rate-limits the rest.
        if type(error) not in self._bugs_logged:
            self._bugs_logged.add(type(error))
            logger.exception("failed to decode the payload on %s", key)

    def _new_decoder(self, key: str) -> SeriesDecoder:
        reading_key = readings.parse_key(key)
        decoder = SeriesDecoder(key, self._catalog.resolve(reading_key), self._times)
        self._decoders[key] = decoder
        return decoder
