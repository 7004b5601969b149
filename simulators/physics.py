"""A rough model of the command room, so the dashboards move when the lights and the wall switch.

Each step reads the coils and display feedback the gateway controls and writes only measurements
(discrete inputs and input registers): physics never touches coils or holding registers, so a value
a client wrote is never overwritten. A value a test sets by hand is adopted as the new state.

Model, per step of ``dt`` seconds:

* light circuit (relay8 coil) ON: 60 W, +40 lx at every env sensor (2 % noise);
* display ON (videowall7 ``display_N_on``): 150 W, room warms 0.05 °C/min per display, relaxing
  towards 24.5 °C with a 10-minute time constant (so 7 displays settle 3.5 °C higher);
* humidity and CO2 drift around 60 %RH and 450 ppm;
* meter (sdm630): circuits spread over L1-L3, voltage 230 V ± noise, 50 Hz ± noise, current at
  power factor 0.95, energy_import integrates total power.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random

from devices.codec import CodecError, Value
from devices.models import DataType, Point, Table
from simulators.device import DeviceSim

log = logging.getLogger(__name__)

LIGHT_W = 60.0
LUX_PER_CIRCUIT = 40.0
DISPLAY_W = 150.0
HEAT_C_PER_S_PER_DISPLAY = 0.05 / 60
ROOM_BASE_C = 24.5
ROOM_TAU_S = 10 * 60.0
POWER_FACTOR = 0.95
CONTROLLER_BASE_C = 35.0
CONTROLLER_C_PER_DISPLAY = 1.0


def fit(point: Point, value: float) -> float | int:
    """Clamp ``value`` to the point's limits and round it to what its registers can hold."""
    if point.minimum is not None:
        value = max(value, point.minimum)
    if point.maximum is not None:
        value = min(value, point.maximum)
    if point.type in (DataType.FLOAT32, DataType.FLOAT64):
        return value
    raw = round((value - point.offset) / point.scale)
    if point.scale == 1.0 and point.offset == 0.0:
        return int(raw)
    return raw * point.scale + point.offset


class RoomPhysics:
    """Steps the room model over the given devices (matched by profile model)."""

    def __init__(self, devices: list[DeviceSim], rng: random.Random) -> None:
        self.rng = rng
        self.relays = [d for d in devices if d.profile.model == "relay8"]
        self.walls = [d for d in devices if d.profile.model == "videowall7"]
        self.sensors = [d for d in devices if d.profile.model == "envsensor"]
        self.meters = [d for d in devices if d.profile.model == "sdm630"]
        # (device id, key) -> (float state, value last written); see _state().
        self._states: dict[tuple[str, str], tuple[float, Value]] = {}

    async def run(self, period_s: float) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(period_s)
            now = loop.time()
            try:
                self.step(now - last)
            except (CodecError, KeyError, IndexError):
                log.exception("physics step failed")
            last = now

    def _state(self, dev: DeviceSim, key: str) -> float:
        """Continuous state of a measurement; a value someone else set since our last write wins."""
        served = dev.get_point(key)
        state, written = self._states.get((dev.id, key), (float(served), served))
        return float(served) if served != written else state

    def _put(self, dev: DeviceSim, key: str, state: float) -> None:
        point = dev.profile.point(key)
        if point.table not in (Table.DISCRETE_INPUT, Table.INPUT_REGISTER):
            raise RuntimeError(f"physics must not write {point.table} {key}")  # never coils/holding
        dev.set_point(key, fit(point, state))
        self._states[(dev.id, key)] = (state, dev.get_point(key))

    def _walk(
        self, dev: DeviceSim, key: str, centre: float, pull_per_s: float, noise: float, dt: float
    ) -> None:
        # Exact relaxation towards centre (stable for any dt) plus a little noise.
        value = centre + (self._state(dev, key) - centre) * math.exp(-pull_per_s * dt)
        self._put(dev, key, value + self.rng.gauss(0.0, noise) * min(dt, 1.0) ** 0.5)

    def step(self, dt: float) -> None:
        # Loads per phase: circuit k of all relay modules on phase k % 3, display j on phase j % 3.
        phase_w = [0.0, 0.0, 0.0]
        circuits_on = 0
        k = 0
        for relay in self.relays:
            for p in relay.profile.points:
                if p.table is Table.COIL:
                    if relay.get_point(p.key) is True:
                        circuits_on += 1
                        phase_w[k % 3] += LIGHT_W
                    k += 1
        displays_on = 0
        j = 0
        for wall in self.walls:
            shown = [
                p.key
                for p in wall.profile.points
                if p.table is Table.DISCRETE_INPUT and p.key.endswith("_on")
            ]
            on = sum(1 for key in shown if wall.get_point(key) is True)
            for key in shown:
                if wall.get_point(key) is True:
                    phase_w[j % 3] += DISPLAY_W
                j += 1
            displays_on += on
            target = CONTROLLER_BASE_C + CONTROLLER_C_PER_DISPLAY * on
            temp = self._state(wall, "controller_temperature")
            self._put(wall, "controller_temperature", temp + (target - temp) * min(dt / 60.0, 1.0))
        self._sensors(dt, circuits_on, displays_on)
        self._meters(dt, phase_w)

    def _sensors(self, dt: float, circuits_on: int, displays_on: int) -> None:
        for s in self.sensors:
            lux = LUX_PER_CIRCUIT * circuits_on
            self._put(s, "illuminance", lux * (1 + self.rng.gauss(0.0, 0.02)) if lux else 0.0)
            # dT/dt = heat - (T - base) / tau, solved exactly over dt so any step size is stable.
            settled = ROOM_BASE_C + HEAT_C_PER_S_PER_DISPLAY * displays_on * ROOM_TAU_S
            temp = settled + (self._state(s, "temperature") - settled) * math.exp(-dt / ROOM_TAU_S)
            self._put(s, "temperature", temp + self.rng.gauss(0.0, 0.005))
            self._walk(s, "humidity", 60.0, 0.01, 0.05, dt)
            self._walk(s, "co2", 450.0, 0.01, 1.0, dt)

    def _meters(self, dt: float, phase_w: list[float]) -> None:
        for m in self.meters:
            total = 0.0
            for n, watts in enumerate(phase_w, start=1):
                self._walk(m, f"voltage_l{n}", 230.0, 0.05, 0.3, dt)
                power = watts * (1 + self.rng.gauss(0.0, 0.005)) if watts else 0.0
                volts = float(m.get_point(f"voltage_l{n}"))
                self._put(m, f"power_l{n}", power)
                self._put(m, f"current_l{n}", power / (volts * POWER_FACTOR) if volts > 0 else 0.0)
                total += power
            self._put(m, "power_total", total)
            self._walk(m, "frequency", 50.0, 0.1, 0.01, dt)
            self._put(m, "energy_import", self._state(m, "energy_import") + total * dt / 3.6e6)
