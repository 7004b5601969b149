"""The room as the operator console draws it (from the site file's console plan) and the commands it allows.

``RoomPlan`` is static: which circuits, walls with their displays, sensors and meters exist, with labels
and units from the device profiles. Nothing here names a device: the site file (its ``console:``
section, or the profiles' console hints) says what exists, see devices/console.py.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devices.loader import LoadedSite, load_site

ON_OFF = ("ON", "OFF")
_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


@dataclass(frozen=True)
class Tile:
    """One value on the plan: device, point key, label (id/en) and unit."""

    device: str
    point: str
    label_id: str
    label_en: str
    unit: str = ""
    device_class: str = ""  # the profile's Home Assistant class (temperature, power, ...), if any


@dataclass(frozen=True)
class Display:
    device: str  # the wall controller
    number: int
    power: str  # writable coil key, e.g. display_3_power
    feedback: str  # read-only input key, e.g. display_3_on
    target: str  # what the console posts: the power key, ``device.power`` when the site has several walls


@dataclass(frozen=True)
class Wall:
    device: str
    name: str
    layout: str | None  # the layout point (a writable enumeration), if the wall has one
    layouts: tuple[str, ...]
    displays: tuple[Display, ...]


@dataclass(frozen=True)
class Readings:
    """A sensor or meter and the values the console shows of it."""

    device: str
    name: str
    tiles: tuple[Tile, ...]


@dataclass(frozen=True)
class RoomPlan:
    site: str
    label: str
    devices: tuple[tuple[str, str], ...]  # (id, name)
    circuits: tuple[Tile, ...]
    walls: tuple[Wall, ...]
    sensors: tuple[Readings, ...]
    meters: tuple[Readings, ...]
    gateway: str = ""  # the site's gateway id (its bridge state is the console's "Gateway")

    def device_ids(self) -> set[str]:
        return {d for d, _ in self.devices}

    def circuit(self, device: str, point: str) -> Tile | None:
        return next((c for c in self.circuits if c.device == device and c.point == point), None)

    @property
    def displays(self) -> tuple[Display, ...]:
        """Every display of every wall, in order."""
        return tuple(d for w in self.walls for d in w.displays)

    def wall(self, device: str) -> Wall | None:
        return next((w for w in self.walls if w.device == device), None)


def load_plan(path: Path | str) -> RoomPlan:
    """The plan of the room from a site file (its console plan; see devices/console.py)."""
    return _cached_plan(str(path), Path(path).stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _cached_plan(path: str, mtime_ns: int) -> RoomPlan:  # the plan is immutable: one per file version
    return plan_from_site(load_site(path))


def plan_from_site(loaded: LoadedSite) -> RoomPlan:
    console = loaded.console()
    by_id = {d.id: d for d in loaded.site.devices}

    def tile(device: str, key: str) -> Tile:
        p = loaded.profile_of(by_id[device]).point(key)
        return Tile(device, key, p.label.id, p.label.en, p.unit or "", p.device_class or "")

    circuits: list[Tile] = []
    for entry in console.circuits:
        for key in entry.points:
            n = len(circuits) + 1  # circuits are numbered across the site, in the console's order
            circuits.append(Tile(entry.device, key, f"Sirkuit {n}", f"Circuit {n}"))
    several = len(console.walls) > 1
    walls = []
    for w in console.walls:
        layout = loaded.profile_of(by_id[w.device]).point(w.layout) if w.layout else None
        displays = tuple(
            Display(w.device, i, d.power, d.feedback, f"{w.device}.{d.power}" if several else d.power)
            for i, d in enumerate(w.displays, 1)
        )
        layouts = tuple(layout.enum.values()) if layout is not None and layout.enum else ()
        walls.append(Wall(w.device, by_id[w.device].name, w.layout, layouts, displays))

    def readings(entries: Any) -> tuple[Readings, ...]:
        return tuple(
            Readings(e.device, by_id[e.device].name, tuple(tile(e.device, k) for k in e.points))
            for e in entries
        )

    return RoomPlan(
        site=loaded.site.site,
        label=loaded.site.label or loaded.site.site,
        devices=tuple((d.id, d.name) for d in loaded.site.devices),
        circuits=tuple(circuits),
        walls=tuple(walls),
        sensors=readings(console.sensors),
        meters=readings(console.meters),
        gateway=loaded.site.gateway_id,
    )


# ---- commands ------------------------------------------------------------------------------------------
class CommandRefused(ValueError):
    """The console action is not one the plan allows (unknown circuit, layout, value)."""


@dataclass(frozen=True)
class ConsoleCommand:
    device: str
    payload: dict[str, Any]  # point -> absolute value, without transaction/ts
    action: str  # human description for the audit, e.g. "lights_a.relay_3 ON"


def _circuit_items(plan: RoomPlan, target: str) -> list[Tile]:
    """``device.point`` items, circuit numbers and ranges of numbers (``1-8``: the console's numbering)."""
    found: list[Tile] = []
    for item in (i.strip() for i in target.split(",")):
        if m := _RANGE.match(item):
            first, last = int(m[1]), int(m[2] or m[1])
            if not 1 <= first <= last <= len(plan.circuits):
                raise CommandRefused("unknown circuit")
            found += plan.circuits[first - 1 : last]
            continue
        device, _, point = item.partition(".")
        tile = plan.circuit(device, point)
        if tile is None:
            raise CommandRefused("unknown circuit")
        found.append(tile)
    return found


def _walls(plan: RoomPlan, target: str) -> list[Wall]:
    """The wall named by ``target``, or every wall when the target is empty."""
    if not plan.walls:
        raise CommandRefused("no video wall")
    if not target:
        return list(plan.walls)
    wall = plan.wall(target)
    if wall is None:
        raise CommandRefused("unknown wall")
    return [wall]


def build_commands(plan: RoomPlan, action: str, target: str, value: str) -> list[ConsoleCommand]:
    """Validate one console action and turn it into gateway commands (one per device)."""
    if action == "layout":
        walls = _walls(plan, target)
        if any(w.layout is None or value not in w.layouts for w in walls):
            raise CommandRefused("unknown layout")
        return [ConsoleCommand(w.device, {str(w.layout): value}, f"{w.device} layout {value}") for w in walls]
    if value not in ON_OFF:
        raise CommandRefused("value must be ON or OFF")
    if action == "circuit":
        device, _, point = target.partition(".")
        if plan.circuit(device, point) is None:
            raise CommandRefused("unknown circuit")
        return [ConsoleCommand(device, {point: value}, f"{device}.{point} {value}")]
    if action == "circuits":
        grouped: dict[str, dict[str, Any]] = {}
        for tile in _circuit_items(plan, target):
            grouped.setdefault(tile.device, {})[tile.point] = value
        if not grouped:
            raise CommandRefused("no circuit")
        return [ConsoleCommand(d, p, f"{d} {','.join(p)} {value}") for d, p in grouped.items()]
    if action == "all_lights":
        commands: dict[str, dict[str, Any]] = {}
        for c in plan.circuits:
            commands.setdefault(c.device, {})[c.point] = value
        return [ConsoleCommand(d, p, f"all lights {value} ({d})") for d, p in commands.items()]
    if action == "display":
        display = next((d for d in plan.displays if target in (d.target, f"{d.device}.{d.power}")), None)
        if display is None:
            raise CommandRefused("unknown display")
        return [
            ConsoleCommand(
                display.device, {display.power: value}, f"{display.device} display {display.number} {value}"
            )
        ]
    if action == "wall_power":
        walls = _walls(plan, target)
        several = len(walls) > 1
        return [
            ConsoleCommand(
                w.device,
                {d.power: value for d in w.displays},
                f"whole wall {value}" + (f" ({w.device})" if several else ""),
            )
            for w in walls
        ]
    raise CommandRefused("unknown action")
