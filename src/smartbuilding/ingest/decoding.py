"""Validated decoding of reading payloads, fast for payloads made from a template.

Each sample is decoded and validated exactly as :func:`smartbuilding.readings.decode`
does, with the same rejection reasons. Payloads rendered by
:class:`~smartbuilding.readings.PayloadTemplate` (replays, simulated sensors) take a
fast path once a payload of their key has passed the full decode: later payloads that
start with the same template head are checked by one regular expression plus the value
and time checks. Anything that does not fit goes through the full decode, so the fast
path accepts only payloads that the full decode accepts, with the same result.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone

from smartbuilding import readings
from smartbuilding.keys import QUANTITIES, ReadingKey

# Distinct measured_at texts remembered; a replay repeats each one for every series.
TIME_CACHE_SIZE = 4096

# Tail of a template payload after its head: a JSON number, then measured_at as a JSON string
# without escapes. Every payload that matches is valid JSON with exactly the template's five fields.
_TAIL = re.compile(
    rb'(-?(?:0|[1-9][0-9]{0,19})((?:\.[0-9]{1,20})?(?:[eE][+-]?[0-9]{1,3})?)),"measured_at":"([0-9A-Za-z:.+\-]{1,64})"\}'
)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)

# A decoded reading: (measured_at µs since the epoch UTC, UTC offset in seconds, value, device).
Decoded = tuple[int, int, float, str]


def to_stored(moment: datetime) -> tuple[int, int]:
    """Return (µs since the epoch, UTC offset in seconds) of an aware datetime.

    The offset is kept to whole seconds: ISO 8601 offsets have no smaller unit, and a
    sub-second offset (which Python accepts) loses its fraction in the local text only.
    """
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError(f"{moment.isoformat()} has no UTC offset")
    return (moment - _EPOCH) // _MICROSECOND, offset.days * 86400 + offset.seconds


class KeyDecoder:
    """Decodes the payloads published on one reading key."""

    __slots__ = ("key", "reading_key", "minimum", "maximum", "head", "device", "_times")

    def __init__(self, key: str, times: dict[bytes, tuple[int, int]] | None = None) -> None:
        self.key = key
        self.reading_key: ReadingKey = readings.parse_key(key)
        quantity = QUANTITIES[self.reading_key.quantity]
        self.minimum = quantity.minimum
        self.maximum = quantity.maximum
        self.head: bytes | None = None
        self.device = ""
        # Shared between the decoders of one intake: a time text appears on every key.
        self._times = times if times is not None else {}

    def decode(self, payload: bytes) -> Decoded:
        """Return the decoded reading or raise :class:`InvalidReadingError` as decode() does."""
        head = self.head
        if head is None or not payload.startswith(head):
            return self._decode_in_full(payload)
        match = _TAIL.fullmatch(payload, len(head))
        if match is None:
            return self._decode_in_full(payload)

        number, fraction_or_exponent, measured_at = match.groups()
        # json.loads reads a number without fraction or exponent as an int, so "-0" is 0.
        value = float(number) if fraction_or_exponent else float(int(number))
        if not math.isfinite(value) or not self.minimum <= value <= self.maximum:
            return self._decode_in_full(payload)
        stored = self._times.get(measured_at) or self._parse_time(measured_at)
        if stored is None:
            return self._decode_in_full(payload)
        return (stored[0], stored[1], value, self.device)

    def _parse_time(self, text: bytes) -> tuple[int, int] | None:
        try:
            moment = datetime.fromisoformat(text.decode("ascii"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            return None
        stored = to_stored(moment)
        if len(self._times) >= TIME_CACHE_SIZE:
            self._times.clear()
        self._times[text] = stored
        return stored

    def _decode_in_full(self, payload: bytes) -> Decoded:
        reading = readings.decode(self.key, payload)
        if self.head is None or reading.device != self.device:
            head = readings.PayloadTemplate(reading.key, reading.device).head
            if payload.startswith(head):
                self.head = head
                self.device = reading.device
        measured_at, utc_offset = to_stored(reading.measured_at)
        return (measured_at, utc_offset, reading.value, reading.device)


class PayloadDecoder:
    """Decodes payloads of any reading key, keeping one :class:`KeyDecoder` per key seen."""

    def __init__(self) -> None:
        self._decoders: dict[str, KeyDecoder] = {}
        self._times: dict[bytes, tuple[int, int]] = {}

    def decoder_of(self, key: str) -> KeyDecoder:
        """Return the decoder of ``key``; an invalid key raises :class:`InvalidReadingError`."""
        decoder = self._decoders.get(key)
        if decoder is None:
            decoder = self._decoders[key] = KeyDecoder(key, self._times)
        return decoder
