"""The simulated room model and the sensor's options, without Zenoh."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from smartbuilding.devices.sensor import SensorOptions, room_of_device
from smartbuilding.devices.simulation import RoomModel
from smartbuilding.errors import ConfigError
from smartbuilding.keys import ReadingKey
from smartbuilding.readings import check_value

START = datetime(2024, 3, 4, 0, 0, tzinfo=timezone.utc)  # A Monday.


def week_of_samples(seed: int, step: timedelta = timedelta(minutes=5)) -> list[tuple[datetime, dict[str, float]]]:
    model = RoomModel(seed=seed)
    moments = [START + i * step for i in range(int(timedelta(days=7) / step))]
    return [(moment, model.sample(moment)) for moment in moments]


@pytest.mark.parametrize("seed", [0, 1, 42, 2024])
def test_simulation_values_always_valid(seed: int) -> None:
    """A simulated week passes check_value for every quantity, and stays inside the documented bands."""
    for _moment, values in week_of_samples(seed):
        for quantity, value in values.items():
            check_value(ReadingKey("sdh", "4", "413", quantity), value)
        assert 20.0 <= values["temperature"] <= 26.0
        assert 30.0 <= values["humidity"] <= 60.0
        assert 400.0 <= values["co2"] <= 1200.0
        assert 0.0 <= values["light"] <= 800.0
        assert 0.0 <= values["occupancy"] <= 1.0


def test_simulation_follows_the_day() -> None:
    """Working hours are busier than nights: more occupancy, more CO2, more light."""
    samples = week_of_samples(3)
    day = [v for moment, v in samples if moment.weekday() < 5 and 10 <= moment.hour < 16]
    night = [v for moment, v in samples if 0 <= moment.hour < 5]

    def mean(values: list[dict[str, float]], quantity: str) -> float:
        return sum(v[quantity] for v in values) / len(values)

    for quantity in ("occupancy", "co2", "light"):
        assert mean(day, quantity) > mean(night, quantity)


def test_simulation_energy_counts_up() -> None:
    """Energy is a counter: it never decreases."""
    energy = [values["energy"] for _, values in week_of_samples(5)]
    assert energy[-1] > 0
    assert all(a <= b for a, b in zip(energy, energy[1:]))


def test_simulation_seed_reproducible() -> None:
    """The same seed and times give the same values; another seed gives others."""
    assert week_of_samples(9)[:50] == week_of_samples(9)[:50]
    assert week_of_samples(9)[:50] != week_of_samples(10)[:50]


def test_sensor_options_derive_room_and_floor() -> None:
    """The room comes from the id's trailing number and the floor from the room."""
    options = SensorOptions(device="sdh-1204")
    assert (options.room, options.floor) == ("1204", "12")
    assert str(options.reading_keys["co2"]) == "building/sim/floor/12/room/1204/co2"
    assert room_of_device("annex-east-310") == "310"


def test_sensor_options_explicit_floor() -> None:
    """An explicit floor is kept even for a room that is not a number."""
    options = SensorOptions(device="probe", room="lab", floor="ground")
    assert str(options.reading_keys["temperature"]) == "building/sim/floor/ground/room/lab/temperature"


@pytest.mark.parametrize(("fields", "message"), [
    ({"device": "x", "room": "413", "interval": 0}, "interval"),
    ({"device": "x", "room": "413", "buffer": -1}, "buffer"),
    ({"device": "x", "room": "413", "quantities": ()}, "(none given)"),
    ({"device": "x", "room": "413", "building": "a/b"}, "invalid building name"),
], ids=["zero-interval", "negative-buffer", "no-quantities", "slash-in-building"])
def test_sensor_options_rejected(fields: dict, message: str) -> None:
    """Invalid options raise ConfigError naming what is wrong."""
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SensorOptions(**fields)
