"""The reading schema: one measured value, as it travels in a Zenoh payload.

Version 1 of the schema is a JSON object published with the encoding
``application/json;smartbuilding.reading/1``::

    {"schema": "smartbuilding.reading/1",
     "value": 23.93,                           # a finite JSON number
     "unit": "°C",                             # the quantity's canonical unit
     "measured_at": "2013-08-23T23:05:00-07:00",  # ISO 8601 with a UTC offset
     "device": "sdh-413"}                      # the id of the device that measured it

The key says what was measured and where; the payload says the value, when it was
measured and by which device. ``measured_at`` is the time of measurement, not of
publication, so a replay of 2013 keeps 2013, and the pair (key, measured_at)
identifies a reading: storing it twice stores it once.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime

from smartbuilding.errors import InvalidKeyError, InvalidReadingError
from smartbuilding.keys import QUANTITIES, ReadingKey, UnknownQuantityError, validate_name

SCHEMA = "smartbuilding.reading/1"
ENCODING = f"application/json;{SCHEMA}"

_FIELDS = frozenset({"schema", "value", "unit", "measured_at", "device"})


@dataclass(frozen=True, slots=True)
class Reading:
    """A validated reading: where and what (``key``), how much, when and by whom."""

    key: ReadingKey
    value: float
    measured_at: datetime
    device: str

    def __post_init__(self) -> None:
        check_value(self.key, self.value)
        if self.measured_at.tzinfo is None:
            raise InvalidReadingError("time", f"measured_at of {self.key} has no UTC offset")
        validate_name("device", self.device)

    @property
    def unit(self) -> str:
        return self.key.unit

    def to_json(self) -> dict[str, object]:
        return {
            "schema": SCHEMA,
            "value": self.value,
            "unit": self.unit,
            "measured_at": self.measured_at.isoformat(),
            "device": self.device,
        }


def check_value(key: ReadingKey, value: object) -> float:
    """Return ``value`` when it is a finite number inside the quantity's possible range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidReadingError("value", f"value of {key} is {value!r}, not a number")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # An integer too large for a float, such as 10**400.
        finite = False
    if not finite:
        raise InvalidReadingError("value", f"value of {key} is {value!r}, not a finite number")
    quantity = QUANTITIES[key.quantity]
    if not quantity.minimum <= value <= quantity.maximum:
        raise InvalidReadingError(
            "range",
            f"value {value!r} of {key} is outside the possible range "
            f"[{quantity.minimum}, {quantity.maximum}] of {key.quantity}",
        )
    return float(value)


def encode(reading: Reading) -> bytes:
    """Encode a reading as a version 1 payload."""
    return json.dumps(reading.to_json(), separators=(",", ":")).encode()


class PayloadTemplate:
    """Fast encoder for many readings of one key and device (replay, simulated sensors).

    The constant part of the payload is encoded once; each reading adds only its value and
    time. ``value`` must already be a finite float and ``measured_at`` an ISO 8601 string
    with an offset: callers that cannot guarantee that use :func:`encode`.
    """

    __slots__ = ("_head",)

    def __init__(self, key: ReadingKey, device: str) -> None:
        validate_name("device", device)
        constant = json.dumps({"schema": SCHEMA, "unit": key.unit, "device": device}, separators=(",", ":"))
        self._head = constant[:-1] + ',"value":'

    @property
    def head(self) -> bytes:
        """The bytes every rendered payload starts with, up to and including ``"value":``."""
        return self._head.encode()

    def render(self, value: float, measured_at: str) -> bytes:
        return f'{self._head}{value!r},"measured_at":"{measured_at}"}}'.encode()


def decode(key: str, payload: bytes) -> Reading:
    """Decode and validate the payload published on ``key``.

    Raises :class:`InvalidReadingError` whose ``reason`` is one of ``key``, ``quantity``,
    ``not_json``, ``schema``, ``unit``, ``value``, ``range``, ``time`` or ``device``.
    """
    reading_key = parse_key(key)
    document = _load_object(key, payload)
    if document.get("schema") != SCHEMA:
        raise InvalidReadingError(
            "schema", f"payload on {key} has schema {document.get('schema')!r}, expected {SCHEMA!r}"
        )
    unknown = document.keys() - _FIELDS
    if unknown:
        raise InvalidReadingError("schema", f"payload on {key} has unknown fields {sorted(unknown)}")
    if document.get("unit") != reading_key.unit:
        raise InvalidReadingError(
            "unit",
            f"payload on {key} has unit {document.get('unit')!r}; "
            f"{reading_key.quantity} is measured in {reading_key.unit!r}",
        )
    value = check_value(reading_key, document.get("value"))
    measured_at = parse_measured_at(key, document.get("measured_at"))
    device = document.get("device")
    try:
        validate_name("device", device)  # type: ignore[arg-type]
    except InvalidKeyError as error:
        raise InvalidReadingError("device", f"payload on {key}: {error}") from None
    return Reading(key=reading_key, value=value, measured_at=measured_at, device=device)  # type: ignore[arg-type]


def parse_key(key: str) -> ReadingKey:
    """Parse a reading key, turning key errors into reading errors with their reason."""
    try:
        return ReadingKey.parse(key)
    except UnknownQuantityError as error:
        raise InvalidReadingError("quantity", str(error)) from None
    except InvalidKeyError as error:
        raise InvalidReadingError("key", str(error)) from None


def parse_measured_at(key: str, text: object) -> datetime:
    """Parse the ``measured_at`` field; it must be ISO 8601 with a UTC offset."""
    if not isinstance(text, str):
        raise InvalidReadingError("time", f"measured_at on {key} is {text!r}, not an ISO 8601 string")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidReadingError("time", f"measured_at on {key} is {text!r}, not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise InvalidReadingError("time", f"measured_at on {key} is {text!r}, which has no UTC offset")
    return moment


def _load_object(key: str, payload: bytes) -> dict[str, object]:
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        raise InvalidReadingError("not_json", f"payload on {key} is not JSON: {payload[:60]!r}") from None
    if not isinstance(document, dict):
        raise InvalidReadingError("schema", f"payload on {key} is a JSON {type(document).__name__}, not an object")
    return document
