"""The video wall's room panel: a summary of the console's live room (lights, displays, temperatures, power,
availability) computed from the site's plan, so any site's devices appear without code changes."""

from __future__ import annotations

from typing import Any

from portal.i18n import translate
from portal.reference import Lang
from portal.services.room import LiveRoom, RoomPlan, alarm_rows
from portal.services.wall import current_layout


def room_panel(room: LiveRoom, lang: Lang = "id") -> dict[str, Any]:
    """The context of ``wall/_room.html``. Several walls or meters are told apart by their device name."""
    snap = room.snapshot()
    states: dict[str, dict[str, Any]] = snap["states"]
    avail: dict[str, str] = snap["availability"]
    plan = room.plan
    lights_on = sum(1 for c in plan.circuits if states.get(c.device, {}).get(c.point) == "ON")
    several_walls = len(plan.walls) > 1
    walls = [
        (
            translate("wall_displays_on", lang) + (f" {w.name}" if several_walls else ""),
            sum(1 for d in w.displays if states.get(w.device, {}).get(d.feedback) == "ON"),
            len(w.displays),
            current_layout(states, w.device),
        )
        for w in plan.walls
    ]
    # Temperatures of the sensors and the power of the meters: chosen by the profiles' device class.
    temps = [
        (
            f"{t.label_en if lang == 'en' else t.label_id} {s.name}",
            states.get(s.device, {}).get(t.point),
            t.unit,
        )
        for s in plan.sensors
        for t in s.tiles
        if t.device_class == "temperature"
    ]
    several_meters = len(plan.meters) > 1
    power = [
        (
            translate("wall_electric_power", lang) + (f" {m.name}" if several_meters else ""),
            states.get(m.device, {}).get(t.point),
            t.unit,
        )
        for m in plan.meters
        for t in m.tiles[:1]
        if t.device_class == "power"
    ]
    # Active alarms for the wall (not shelved ones): what and how severe, never who acknowledged or
    # shelved it, nor any note.
    alarms = [
        (
            a.get("severity", ""),
            (a.get("message") or {}).get(lang) or (a.get("message") or {}).get("id", a.get("alarm", "")),
            a.get("state", ""),
        )
        for a in alarm_rows(snap["alarms"])
        if a.get("active") and a.get("state") != "shelved"
    ]
    return {
        "alarms": alarms,
        "bridge": snap["bridge"],
        "lights_on": lights_on,
        "lights_total": len(plan.circuits),
        "walls": walls,
        "temps": temps,
        "power": power,
        "devices": [(name, avail.get(dev, "unknown")) for dev, name in plan.devices],
        "avail_text": {a: translate(f"wall_avail_{a}", lang) for a in ("online", "offline", "unknown")},
        "stale": snap["bridge"] != "online",
    }


def kiosk_wall(plan: RoomPlan) -> str | None:
    """The wall controller whose preset the wall page follows: the site's first wall, if any."""
    return plan.walls[0].device if plan.walls else None


def kiosk_layout(room: LiveRoom) -> str:
    """The preset the wall page shows (``wide`` while unknown or when the site has no wall)."""
    device = kiosk_wall(room.plan)
    return current_layout(room.snapshot()["states"], device) if device else "wide"
