"""The key space: every Zenoh key this system uses is built and parsed here.

| key expression                                    | what                              |
| ------------------------------------------------- | --------------------------------- |
| ``building/{b}/floor/{f}/room/{r}/{quantity}``    | a reading (put), its history (get) |
| ``devices/{id}``                                  | liveliness token of a device      |
| ``devices/{id}/config``, ``devices/{id}/command/{name}`` | device management (get)    |
| ``services/{name}/status``                        | health of one service (get)       |
| ``services/aggregator/{role}``                    | aggregates (get)                  |
| ``maintenance/status``                            | maintenance state (put, get)      |
| ``alerts/{severity}/{rule}``                      | alerts raised by the monitor (put) |

Names inside keys are checked when a key is built, so a wildcard or a separator can
never slip into a published key. This module imports nothing of Zenoh.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from smartbuilding.errors import InvalidKeyError

READINGS = "building/**"
SERVICES_STATUS = "services/*/status"
MAINTENANCE_STATUS = "maintenance/status"
DEVICES = "devices/*"

# Characters that Zenoh gives a meaning in key expressions, or that would split a chunk.
_FORBIDDEN = re.compile(r"[*$?#/\s]")


class UnknownQuantityError(InvalidKeyError):
    """A reading key whose quantity is not one of :data:`QUANTITIES`."""


@dataclass(frozen=True)
class Quantity:
    """A measured quantity: its canonical unit and the physically possible range."""

    name: str
    unit: str
    minimum: float = -math.inf
    maximum: float = math.inf


QUANTITIES: dict[str, Quantity] = {
    q.name: q
    for q in (
        Quantity("temperature", "°C", minimum=-273.15),
        Quantity("humidity", "%RH", minimum=0.0, maximum=100.0),
        Quantity("co2", "ppm", minimum=0.0),
        Quantity("light", "lx", minimum=0.0),
        # Motion (PIR) sensor activity, dimensionless. The recorded building documents it as
        # the share of a minute with motion (0..1), yet about 1 % of its rows hold values from
        # 1.2 to 5742, which look like event counts, so no upper bound is enforced.
        Quantity("occupancy", "1", minimum=0.0),
        Quantity("energy", "kWh"),
        Quantity("power", "W"),
    )
}


def validate_name(kind: str, value: str) -> str:
    """Return ``value`` when it can be one chunk of a key, else raise naming ``kind``."""
    if not isinstance(value, str) or not value:
        raise InvalidKeyError(f"invalid {kind} name {value!r}: it must be a non-empty string")
    bad = _FORBIDDEN.search(value)
    if bad:
        raise InvalidKeyError(
            f"invalid {kind} name {value!r}: it contains {bad.group()!r}; "
            "names may not contain '*', '$', '?', '#', '/' or whitespace"
        )
    return value


def floor_of_room(room: str) -> str:
    """Return the floor of a numbered room: every digit but the last two (413 is on 4)."""
    if not room.isdigit() or len(room) < 3:
        raise InvalidKeyError(
            f"cannot derive the floor of room {room!r}: only room numbers of three or more "
            "digits encode their floor; give the floor explicitly"
        )
    return str(int(room[:-2]))


@dataclass(frozen=True, slots=True)
class ReadingKey:
    """The key of one room's quantity: ``building/{b}/floor/{f}/room/{r}/{quantity}``."""

    building: str
    floor: str
    room: str
    quantity: str

    def __post_init__(self) -> None:
        validate_name("building", self.building)
        validate_name("floor", self.floor)
        validate_name("room", self.room)
        validate_name("quantity", self.quantity)
        if self.quantity not in QUANTITIES:
            raise UnknownQuantityError(
                f"unknown quantity {self.quantity!r}; known quantities: {', '.join(QUANTITIES)}"
            )

    def __str__(self) -> str:
        return f"building/{self.building}/floor/{self.floor}/room/{self.room}/{self.quantity}"

    @property
    def unit(self) -> str:
        return QUANTITIES[self.quantity].unit

    @classmethod
    def parse(cls, key: str) -> ReadingKey:
        """Parse a concrete reading key, raising :class:`InvalidKeyError` naming the key."""
        chunks = key.split("/")
        if len(chunks) != 7 or chunks[0] != "building" or chunks[2] != "floor" or chunks[4] != "room":
            raise InvalidKeyError(
                f"key {key!r} is outside the key space: expected "
                "building/{building}/floor/{floor}/room/{room}/{quantity}"
            )
        return cls(building=chunks[1], floor=chunks[3], room=chunks[5], quantity=chunks[6])


def room_selector(building: str, floor: str | None = None, room: str | None = None) -> str:
    """Return the key expression of every reading of a building, a floor or a room."""
    validate_name("building", building)
    if floor is None:
        return f"building/{building}/**"
    validate_name("floor", floor)
    if room is None:
        return f"building/{building}/floor/{floor}/**"
    validate_name("room", room)
    return f"building/{building}/floor/{floor}/room/{room}/*"


def device_token(device_id: str) -> str:
    """Return the liveliness token key of a device."""
    return f"devices/{validate_name('device', device_id)}"


def device_config(device_id: str) -> str:
    return f"devices/{validate_name('device', device_id)}/config"


def device_command(device_id: str, command: str) -> str:
    return f"devices/{validate_name('device', device_id)}/command/{validate_name('command', command)}"


def device_of_token(key: str) -> str:
    """Return the device id of a ``devices/{id}`` liveliness key."""
    chunks = key.split("/")
    if len(chunks) != 2 or chunks[0] != "devices":
        raise InvalidKeyError(f"key {key!r} is not a device liveliness key devices/{{id}}")
    return validate_name("device", chunks[1])


def service_status(service: str) -> str:
    """Return the status key of a service, answered with its health as JSON."""
    return f"services/{validate_name('service', service)}/status"


def service_of_status(key: str) -> str:
    """Return the service name of a ``services/{name}/status`` key."""
    chunks = key.split("/")
    if len(chunks) != 3 or chunks[0] != "services" or chunks[2] != "status":
        raise InvalidKeyError(f"key {key!r} is not a service status key services/{{name}}/status")
    return chunks[1]


def aggregator(role: str) -> str:
    """Return the key on which the aggregator of ``role`` (primary, standby) answers."""
    return f"services/aggregator/{validate_name('role', role)}"


def alert(severity: str, rule: str) -> str:
    return f"alerts/{validate_name('severity', severity)}/{validate_name('rule', rule)}"
