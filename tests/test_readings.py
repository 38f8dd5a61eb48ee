"""The reading schema: encoding, decoding and every rejection reason."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from smartbuilding import readings
from smartbuilding.errors import InvalidReadingError
from smartbuilding.keys import ReadingKey

KEY = ReadingKey(building="sdh", floor="4", room="413", quantity="temperature")
PACIFIC = timezone(timedelta(hours=-7))
MEASURED = datetime(2013, 8, 23, 23, 5, tzinfo=PACIFIC)


def payload(**fields: object) -> bytes:
    document = {"schema": readings.SCHEMA, "value": 23.9, "unit": "°C", "measured_at": MEASURED.isoformat(), "device": "sdh-413"}
    document.update(fields)
    return json.dumps(document).encode()


def test_reading_encode_decode_round_trip() -> None:
    """A reading encoded and decoded again is equal to the original, offset included."""
    reading = readings.Reading(key=KEY, value=23.9, measured_at=MEASURED, device="sdh-413")
    decoded = readings.decode(str(KEY), readings.encode(reading))
    assert decoded == reading
    assert decoded.measured_at.utcoffset() == timedelta(hours=-7)


def test_payload_template_matches_encode() -> None:
    """The fast template renders the same document as the general encoder."""
    template = readings.PayloadTemplate(KEY, "sdh-413")
    fast = json.loads(template.render(23.9, MEASURED.isoformat()))
    general = json.loads(readings.encode(readings.Reading(key=KEY, value=23.9, measured_at=MEASURED, device="sdh-413")))
    assert fast == general


@pytest.mark.parametrize(
    ("key", "body", "reason"),
    [
        ("building/sdh/oops", payload(), "key"),
        ("building/sdh/floor/4/room/413/smell", payload(), "quantity"),
        (str(KEY), b"not json", "not_json"),
        (str(KEY), b"\xff\xfe", "not_json"),
        (str(KEY), b"[1, 2]", "schema"),
        (str(KEY), payload(schema="other/1"), "schema"),
        (str(KEY), payload(extra=1), "schema"),
        (str(KEY), payload(unit="°F"), "unit"),
        (str(KEY), payload(value="23.9"), "value"),
        (str(KEY), payload(value=True), "value"),
        (str(KEY), b'{"schema":"smartbuilding.reading/1","value":NaN,"unit":"\\u00b0C","measured_at":"2013-08-23T23:05:00-07:00","device":"d"}', "value"),
        (str(KEY), b'{"schema":"smartbuilding.reading/1","value":Infinity,"unit":"\\u00b0C","measured_at":"2013-08-23T23:05:00-07:00","device":"d"}', "value"),
        (str(KEY), payload(value=-300.0), "range"),
        ("building/sdh/floor/4/room/413/humidity", payload(unit="%RH", value=101.0), "range"),
        (str(KEY), payload(measured_at="yesterday"), "time"),
        (str(KEY), payload(measured_at="2013-08-23T23:05:00"), "time"),
        (str(KEY), payload(measured_at=1377324300), "time"),
        (str(KEY), payload(device="a/b"), "device"),
        (str(KEY), payload(device=None), "device"),
    ],
    ids=[
        "key-outside", "unknown-quantity", "not-json", "not-utf8", "json-array", "wrong-schema", "extra-field",
        "wrong-unit", "string-value", "bool-value", "nan", "infinity", "below-range", "above-range",
        "bad-time", "naive-time", "numeric-time", "device-slash", "device-missing",
    ],
)
def test_reading_decode_rejects(key: str, body: bytes, reason: str) -> None:
    """Each kind of bad input is rejected with its own reason and a message naming the key."""
    with pytest.raises(InvalidReadingError) as caught:
        readings.decode(key, body)
    assert caught.value.reason == reason
    assert key in str(caught.value) or reason in ("key", "quantity")


def test_reading_rejects_naive_time() -> None:
    """A Reading built with a time lacking an offset is rejected."""
    with pytest.raises(InvalidReadingError, match="no UTC offset"):
        readings.Reading(key=KEY, value=1.0, measured_at=datetime(2013, 8, 23), device="d")
