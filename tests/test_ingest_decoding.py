"""Payload decoding: the template fast path agrees with readings.decode on every payload."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone

import pytest

from smartbuilding import readings
from smartbuilding.errors import InvalidReadingError
from smartbuilding.ingest.decoding import KeyDecoder, to_stored
from smartbuilding.keys import ReadingKey

KEY = ReadingKey("sdh", "4", "413", "humidity")
PACIFIC = timezone(timedelta(hours=-7))
MEASURED = datetime(2013, 8, 25, 10, 0, tzinfo=PACIFIC)
HEAD = readings.PayloadTemplate(KEY, "sdh-413").head


def trained_decoder() -> KeyDecoder:
    """Return a decoder that has seen one template payload, so its fast path is on."""
    decoder = KeyDecoder(str(KEY), {})
    decoder.decode(readings.PayloadTemplate(KEY, "sdh-413").render(50.0, MEASURED.isoformat()))
    assert decoder.head == HEAD
    return decoder


# Template-shaped payloads: HEAD followed by these bytes.
TAILS = {
    "float": b'45.5,"measured_at":"2013-08-25T10:00:00-07:00"}',
    "integer": b'45,"measured_at":"2013-08-25T10:00:00-07:00"}',
    "negative-zero": b'-0,"measured_at":"2013-08-25T10:00:00-07:00"}',
    "negative-zero-float": b'-0.0,"measured_at":"2013-08-25T10:00:00-07:00"}',
    "exponent": b'4.5E1,"measured_at":"2013-08-25T10:00:00-07:00"}',
    "utc": b'45.5,"measured_at":"2013-08-25T17:00:00Z"}',
    "fraction-of-second": b'45.5,"measured_at":"2013-08-25T10:00:00.123456+02:00"}',
    "above-range": b'100.5,"measured_at":"2013-08-25T10:00:00-07:00"}',
    "below-range": b'-0.5,"measured_at":"2013-08-25T10:00:00-07:00"}',
    "overflow": b'1e999,"measured_at":"2013-08-25T10:00:00-07:00"}',
    "huge-integer": b"1" + b"0" * 400 + b',"measured_at":"2013-08-25T10:00:00-07:00"}',
    "leading-zero": b'045,"measured_at":"2013-08-25T10:00:00-07:00"}',
    "plus-sign": b'+45,"measured_at":"2013-08-25T10:00:00-07:00"}',
    "nan": b'NaN,"measured_at":"2013-08-25T10:00:00-07:00"}',
    "string-value": b'"45","measured_at":"2013-08-25T10:00:00-07:00"}',
    "no-offset": b'45.5,"measured_at":"2013-08-25T10:00:00"}',
    "not-a-time": b'45.5,"measured_at":"yesterday"}',
    "bad-date": b'45.5,"measured_at":"2013-02-30T10:00:00-07:00"}',
    "escaped-time": b'45.5,"measured_at":"2013-08-25T10:00:00\\u002d07:00"}',
    "extra-field": b'45.5,"measured_at":"2013-08-25T10:00:00-07:00","extra":1}',
    "duplicate-field": b'45.5,"measured_at":"2013-08-25T10:00:00-07:00","value":46}',
    "trailing-space": b'45.5,"measured_at":"2013-08-25T10:00:00-07:00"} ',
    "truncated": b'45.5,"measured_at":"2013-08-25T10:00:00-07:00"',
}


def reference(payload: bytes) -> tuple[int, int, float, str] | str:
    """Return what readings.decode makes of ``payload``: the row, or the rejection reason."""
    try:
        reading = readings.decode(str(KEY), payload)
    except InvalidReadingError as error:
        return error.reason
    return (*to_stored(reading.measured_at), reading.value, reading.device)


def outcome(decoder: KeyDecoder, payload: bytes) -> tuple[int, int, float, str] | str:
    try:
        return decoder.decode(payload)
    except InvalidReadingError as error:
        return error.reason


@pytest.mark.parametrize("tail", list(TAILS.values()), ids=list(TAILS))
def test_decoder_template_payload_matches_decode(tail: bytes) -> None:
    """A template-shaped payload gives the reading or the rejection reason readings.decode gives."""
    payload = HEAD + tail
    expected = reference(payload)
    result = outcome(trained_decoder(), payload)
    assert result == expected
    if isinstance(expected, tuple) and isinstance(result, tuple):
        # -0.0 == 0.0, so compare the sign as well.
        assert math.copysign(1.0, result[2]) == math.copysign(1.0, expected[2])


@pytest.mark.parametrize(
    "document",
    [
        {"schema": readings.SCHEMA, "value": 45.5, "unit": "%RH", "measured_at": MEASURED.isoformat(), "device": "sdh-413"},
        {"schema": readings.SCHEMA, "value": 45.5, "unit": "%RH", "measured_at": MEASURED.isoformat(), "device": "other"},
        {"schema": "smartbuilding.reading/2", "value": 45.5, "unit": "%RH", "measured_at": MEASURED.isoformat(), "device": "d"},
        {"schema": readings.SCHEMA, "value": 45.5, "unit": "°C", "measured_at": MEASURED.isoformat(), "device": "d"},
        {"schema": readings.SCHEMA, "value": float("nan"), "unit": "%RH", "measured_at": MEASURED.isoformat(), "device": "d"},
        {"schema": readings.SCHEMA, "value": 45.5, "unit": "%RH", "measured_at": MEASURED.isoformat(), "device": "a b"},
        [1, 2, 3],
    ],
    ids=["general-encoder", "other-device", "other-schema", "wrong-unit", "nan", "bad-device", "not-an-object"],
)
def test_decoder_other_payload_matches_decode(document: object) -> None:
    """A payload that is not template-shaped goes through readings.decode with the same result."""
    payload = json.dumps(document).encode()
    assert outcome(trained_decoder(), payload) == reference(payload)


def test_decoder_not_json_rejected() -> None:
    """A payload that is not JSON is rejected with the reason not_json."""
    assert outcome(trained_decoder(), b"\xff\xfe not json") == "not_json"


def test_decoder_follows_device_change() -> None:
    """When another device publishes on the key, the fast path learns its template too."""
    decoder = trained_decoder()
    other = readings.PayloadTemplate(KEY, "sdh-413-b")
    row = decoder.decode(other.render(40.0, MEASURED.isoformat()))
    assert row == (*to_stored(MEASURED), 40.0, "sdh-413-b")
    assert decoder.head == other.head
