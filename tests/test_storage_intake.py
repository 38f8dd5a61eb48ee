"""Intake: series ids for reading keys, and decoded rows carrying them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from smartbuilding import readings
from smartbuilding.ingest.decoding import to_stored
from smartbuilding.keys import ReadingKey
from smartbuilding.storage.backend import Series
from smartbuilding.storage.intake import SeriesCatalog, SeriesDecoder

KEY = ReadingKey("sdh", "4", "413", "humidity")
MEASURED = datetime(2013, 8, 25, 10, 0, tzinfo=timezone(timedelta(hours=-7)))


def test_series_decoder_row_carries_series_id() -> None:
    """A decoded payload becomes a row that starts with its series id."""
    decoder = SeriesDecoder(str(KEY), Series(7, KEY), {})
    payload = readings.PayloadTemplate(KEY, "sdh-413").render(50.0, MEASURED.isoformat())
    assert decoder.decode(payload) == (7, *to_stored(MEASURED), 50.0, "sdh-413")


def test_catalog_creates_series_once() -> None:
    """A new key gets the next id and is handed out once for storing; a known key keeps its id."""
    catalog = SeriesCatalog([Series(3, KEY)])
    assert catalog.resolve(KEY).id == 3
    co2 = ReadingKey("sdh", "4", "413", "co2")
    created = catalog.resolve(co2)
    assert created.id == 4
    assert catalog.resolve(co2) is created
    assert catalog.take_new() == [created]
    assert catalog.take_new() == []
