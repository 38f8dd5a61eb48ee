"""Plausible values for a simulated room: a daily cycle, occupancy and slow random drift.

The model is deterministic for a given seed and sequence of times, so a test can
reproduce a sensor's output. Every value it returns lies inside its quantity's possible
range (:data:`smartbuilding.keys.QUANTITIES`):

- occupancy 0..1: people are likelier in working hours (08:00-18:00, Monday to Friday);
- temperature about 20-26 °C: a daily cycle peaking mid-afternoon, occupants' heat, drift;
- humidity 30-60 %RH: the opposite daily cycle, plus drift;
- co2 400-1200 ppm: outdoor air plus what occupants breathe out, with a lag;
- light 0-800 lx: daylight by the sun's hours, plus lamps when someone is in;
- power 80-1500 W and energy in kWh, a counter that integrates power.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime

WORKING_HOURS = (8, 18)


def clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


@dataclass
class RoomModel:
    """The simulated state of one room; :meth:`sample` advances it to a new time."""

    seed: int | None = None
    temperature_drift: float = 0.0
    humidity_drift: float = 0.0
    occupancy: float = 0.0
    co2_excess: float = 0.0
    energy_kwh: float = 0.0
    _random: random.Random = field(init=False, repr=False)
    _last: datetime | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def sample(self, now: datetime) -> dict[str, float]:
        """Advance the room to ``now`` (an aware time) and return a value for every quantity."""
        elapsed = 0.0 if self._last is None else max((now - self._last).total_seconds(), 0.0)
        self._last = now
        hour = now.hour + now.minute / 60 + now.second / 3600
        self._advance(elapsed, hour, now.weekday() < 5)
        daylight = max(0.0, math.sin(math.pi * (hour - 6) / 12))
        power = clamp(80 + 900 * self.occupancy + 300 * daylight + self._noise(20), 80.0, 1500.0)
        self.energy_kwh += power * elapsed / 3_600_000
        return {
            "occupancy": round(self.occupancy, 3),
            "temperature": round(clamp(23 + 1.5 * math.sin(math.pi * (hour - 9) / 12) + 1.2 * self.occupancy
                                       + self.temperature_drift, 20.0, 26.0), 2),
            "humidity": round(clamp(45 - 6 * math.sin(math.pi * (hour - 9) / 12) + self.humidity_drift, 30.0, 60.0), 2),
            "co2": round(clamp(420 + self.co2_excess + self._noise(8), 400.0, 1200.0), 1),
            "light": round(clamp(550 * daylight + 250 * (self.occupancy > 0.1) + self._noise(10), 0.0, 800.0), 1),
            "power": round(power, 1),
            "energy": round(self.energy_kwh, 6),
        }

    def _advance(self, elapsed: float, hour: float, weekday: bool) -> None:
        working = weekday and WORKING_HOURS[0] <= hour < WORKING_HOURS[1]
        target = 0.7 if working else 0.03
        # Occupancy relaxes toward the target over about ten minutes, with jumps as people come and go.
        pull = 1 - math.exp(-elapsed / 600)
        self.occupancy = clamp(self.occupancy + (target - self.occupancy) * pull + self._noise(0.05), 0.0, 1.0)
        # CO2 above outdoor level follows occupancy with a time constant of about 20 minutes.
        co2_pull = 1 - math.exp(-elapsed / 1200)
        self.co2_excess += (750 * self.occupancy - self.co2_excess) * co2_pull
        step = math.sqrt(elapsed / 60)
        self.temperature_drift = clamp(self.temperature_drift + self._noise(0.05) * step, -1.5, 1.5)
        self.humidity_drift = clamp(self.humidity_drift + self._noise(0.3) * step, -8.0, 8.0)

    def _noise(self, scale: float) -> float:
        return self._random.gauss(0.0, scale)
