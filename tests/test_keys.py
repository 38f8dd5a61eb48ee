"""The key space: building, parsing and validating keys."""

from __future__ import annotations

import pytest

from smartbuilding import keys
from smartbuilding.errors import InvalidKeyError
from smartbuilding.keys import ReadingKey, UnknownQuantityError


def test_reading_key_round_trip() -> None:
    """A reading key formats to the documented layout and parses back to the same value."""
    key = ReadingKey(building="sdh", floor="4", room="413", quantity="temperature")
    assert str(key) == "building/sdh/floor/4/room/413/temperature"
    assert ReadingKey.parse(str(key)) == key
    assert key.unit == "°C"


@pytest.mark.parametrize("bad", ["*", "$", "?", "#", "/", " "], ids=["star", "dollar", "question", "hash", "slash", "space"])
@pytest.mark.parametrize("field", ["building", "floor", "room"])
def test_reading_key_rejects_forbidden_character(field: str, bad: str) -> None:
    """A forbidden character inside a name is rejected with a message naming the field and the value."""
    names = {"building": "sdh", "floor": "4", "room": "413", "quantity": "co2"}
    names[field] = f"a{bad}b"
    with pytest.raises(InvalidKeyError) as caught:
        ReadingKey(**names)
    assert f"invalid {field} name 'a{bad}b'" in str(caught.value)


def test_reading_key_rejects_empty_name() -> None:
    """An empty room name is rejected."""
    with pytest.raises(InvalidKeyError, match="invalid room name ''"):
        ReadingKey(building="sdh", floor="4", room="", quantity="co2")


def test_reading_key_unknown_quantity() -> None:
    """An unknown quantity raises the dedicated error listing the known ones."""
    with pytest.raises(UnknownQuantityError, match="unknown quantity 'smell'.*temperature"):
        ReadingKey(building="sdh", floor="4", room="413", quantity="smell")


@pytest.mark.parametrize(
    "key",
    ["building/sdh/oops", "building/sdh/floor/4/room/413", "devices/x", "building/sdh/level/4/room/413/co2", ""],
    ids=["short", "no-quantity", "other-space", "wrong-chunk", "empty"],
)
def test_reading_key_parse_outside_key_space(key: str) -> None:
    """Keys that do not follow building/{b}/floor/{f}/room/{r}/{q} are rejected naming the key."""
    with pytest.raises(InvalidKeyError, match="outside the key space"):
        ReadingKey.parse(key)


@pytest.mark.parametrize(("room", "floor"), [("413", "4"), ("510", "5"), ("1012", "10"), ("007", "0")])
def test_floor_of_room(room: str, floor: str) -> None:
    """The floor of a numbered room is every digit but the last two."""
    assert keys.floor_of_room(room) == floor


@pytest.mark.parametrize("room", ["41", "lobby", "4a3"])
def test_floor_of_room_rejects_unnumbered(room: str) -> None:
    """A room whose name does not encode a floor asks for an explicit floor."""
    with pytest.raises(InvalidKeyError, match="give the floor explicitly"):
        keys.floor_of_room(room)


def test_service_and_device_keys() -> None:
    """Service, device, aggregator and alert keys follow the documented layout and parse back."""
    assert keys.service_status("storage") == "services/storage/status"
    assert keys.service_of_status("services/storage/status") == "storage"
    assert keys.device_token("sensor-1") == "devices/sensor-1"
    assert keys.device_of_token("devices/sensor-1") == "sensor-1"
    assert keys.device_command("sensor-1", "reboot") == "devices/sensor-1/command/reboot"
    assert keys.aggregator("standby") == "services/aggregator/standby"
    assert keys.alert("critical", "storage-down") == "alerts/critical/storage-down"


def test_service_key_rejects_wildcard() -> None:
    """A service name with a wildcard is rejected, so status keys stay concrete."""
    with pytest.raises(InvalidKeyError, match="invalid service name"):
        keys.service_status("*")


def test_room_selector_levels() -> None:
    """Selectors cover a building, a floor or a room."""
    assert keys.room_selector("sdh") == "building/sdh/**"
    assert keys.room_selector("sdh", "4") == "building/sdh/floor/4/**"
    assert keys.room_selector("sdh", "4", "413") == "building/sdh/floor/4/room/413/*"
