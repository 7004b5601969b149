"""What the operator console, the wall's room panel and the Command room dashboard draw of a site.

The site file's ``console:`` section lists, by device and point, the switchable circuits, the video
wall(s), the environment sensors and the meters. A list left out is derived from the device profiles
(their ``console:`` hint): every device of the site whose profile has that role, in site order, with the
profile's points. ``resolve_console`` checks every entry against the site's devices and the profiles'
points and returns the resolved lists with every problem found, each naming its key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from devices.models import ConsoleHint, DeviceProfile, DisplayPoints, Point

if TYPE_CHECKING:
    from devices.site import DeviceInstance

Ident = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")]
Role = Literal["circuits", "wall", "sensor", "meter"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PointsEntry(_Frozen):
    """A device and the points to draw; without ``points`` the profile's console hint gives them."""

    device: Ident
    points: tuple[Ident, ...] | None = None


class WallEntry(_Frozen):
    """A video-wall controller: its layout point and its displays (both default to the profile's hint)."""

    device: Ident
    layout: Ident | None = None
    displays: tuple[DisplayPoints, ...] | None = None


class ConsoleSection(_Frozen):
    """The ``console:`` section; a list left out (None) is derived from the profiles, ``[]`` draws none."""

    circuits: tuple[PointsEntry, ...] | None = None
    walls: tuple[WallEntry, ...] | None = None
    sensors: tuple[PointsEntry, ...] | None = None
    meters: tuple[PointsEntry, ...] | None = None


@dataclass(frozen=True)
class ConsoleDevice:
    """A resolved entry: the device and its points in drawing order."""

    device: str
    points: tuple[str, ...]


@dataclass(frozen=True)
class ConsoleWall:
    device: str
    layout: str | None
    displays: tuple[DisplayPoints, ...]


@dataclass(frozen=True)
class ConsolePlan:
    """The resolved ``console:`` section (every name checked against the site and its profiles)."""

    circuits: tuple[ConsoleDevice, ...] = ()
    walls: tuple[ConsoleWall, ...] = ()
    sensors: tuple[ConsoleDevice, ...] = ()
    meters: tuple[ConsoleDevice, ...] = ()


# The section's list key for each profile role.
LIST_OF_ROLE: dict[Role, str] = {
    "circuits": "circuits",
    "wall": "walls",
    "sensor": "sensors",
    "meter": "meters",
}


def _derived(
    role: Role, devices: Sequence[DeviceInstance], profiles: Mapping[str, DeviceProfile]
) -> list[str]:
    """Devices of the site whose profile's console hint has ``role``, in site order."""
    out = []
    for d in devices:
        prof = profiles.get(d.profile)
        if prof is not None and prof.console is not None and prof.console.role == role:
            out.append(d.id)
    return out


def resolve_console(
    section: ConsoleSection | None,
    devices: Sequence[DeviceInstance],
    profiles: Mapping[str, DeviceProfile],
    where: str = "<site>",
    broken_devices: frozenset[str] = frozenset(),
) -> tuple[ConsolePlan, list[str]]:
    """The console plan of a site and every problem of its ``console:`` section (each naming its key);
    ``broken_devices`` failed their own checks and are not reported again here."""
    section = section or ConsoleSection()
    by_id = {d.id: d for d in devices}
    problems: list[str] = []
    lists: dict[str, list[ConsoleDevice]] = {}
    walls: list[ConsoleWall] = []
    for role, key in LIST_OF_ROLE.items():
        given = getattr(section, key)
        entries = (
            given if given is not None else [_hint_entry(role, d) for d in _derived(role, devices, profiles)]
        )
        seen: set[str] = set()
        for entry in entries:
            tag = f"{where}: console.{key}.{entry.device}"
            if entry.device in seen:
                problems.append(f"{tag}: listed more than once")
                continue
            seen.add(entry.device)
            dev = by_id.get(entry.device)
            prof = profiles.get(dev.profile) if dev is not None else None
            if dev is None and entry.device in broken_devices:
                continue
            if dev is None:
                problems.append(f"{tag}: no device {entry.device!r} in devices (known: {', '.join(by_id)})")
                continue
            if prof is None:
                continue  # the device's unknown profile is reported by the device checks
            hint = prof.console if prof.console is not None and prof.console.role == role else None
            if isinstance(entry, WallEntry):
                wall = _wall(entry, prof, hint, tag, problems)
                if wall is not None:
                    walls.append(wall)
                continue
            points = entry.points if entry.points is not None else (hint.points if hint else None)
            if not points:
                problems.append(f"{tag}.points: profile {prof.model} suggests none for {key}; list them")
                continue
            ok = True
            for p in points:
                ok &= _check_point(prof, p, f"{tag}.points", problems, switch=role == "circuits")
            if ok:
                lists.setdefault(key, []).append(ConsoleDevice(entry.device, tuple(points)))
    plan = ConsolePlan(
        circuits=tuple(lists.get("circuits", ())),
        walls=tuple(walls),
        sensors=tuple(lists.get("sensors", ())),
        meters=tuple(lists.get("meters", ())),
    )
    return plan, problems


def _hint_entry(role: Role, device: str) -> PointsEntry | WallEntry:
    return WallEntry(device=device) if role == "wall" else PointsEntry(device=device)


def _wall(
    entry: WallEntry, prof: DeviceProfile, hint: ConsoleHint | None, tag: str, problems: list[str]
) -> ConsoleWall | None:
    layout = entry.layout if entry.layout is not None else (hint.layout if hint else None)
    displays = entry.displays if entry.displays is not None else (hint.displays if hint else ())
    ok = True
    if not displays:
        problems.append(f"{tag}.displays: profile {prof.model} suggests none; list them")
        ok = False
    for i, d in enumerate(displays, 1):
        ok &= _check_point(prof, d.power, f"{tag}.displays.{i}.power", problems, switch=True)
        ok &= _check_point(prof, d.feedback, f"{tag}.displays.{i}.feedback", problems, switch=False)
    if layout is not None:
        ok &= _check_point(prof, layout, f"{tag}.layout", problems, switch=False)
        point = _point(prof, layout)
        if point is not None and (point.enum is None or not point.writable):
            problems.append(f"{tag}.layout: point {layout!r} is not a writable enumeration")
            ok = False
    return ConsoleWall(entry.device, layout, tuple(displays)) if ok else None


def _point(prof: DeviceProfile, key: str) -> Point | None:
    return next((p for p in prof.points if p.key == key), None)


def _check_point(prof: DeviceProfile, key: str, tag: str, problems: list[str], switch: bool) -> bool:
    """The point exists in the profile (and, for a switch, is a writable on/off point)."""
    point = _point(prof, key)
    if point is None:
        problems.append(f"{tag}: profile {prof.model} has no point {key!r}")
        return False
    if switch and not (point.is_bool and point.writable):
        problems.append(f"{tag}: point {key!r} of profile {prof.model} is not a writable on/off point")
        return False
    return True
