"""Initial values the simulated devices start with: a quiet command room, lights and wall off.

Keyed by profile model, then point key, in engineering units (what ``devices.codec`` encodes). Points
not listed start at 0 / OFF / the first enumeration value. ``{unit}`` stands for the device's unit id.
"""

from __future__ import annotations

from devices.codec import Value

UNIT_ID = "{unit}"

INITIAL: dict[str, dict[str, Value]] = {
    "relay8": {
        "device_address": UNIT_ID,
        "firmware_version": 0x0100,  # v1.00 as the Waveshare boards report it
    },
    "videowall7": {
        "layout": "wide",
        "controller_temperature": 35.0,
    },
    "envsensor": {
        "temperature": 24.5,
        "humidity": 60.0,
        "co2": 450,
        "illuminance": 0,
    },
    "sdm630": {
        "voltage_l1": 230.0,
        "voltage_l2": 230.0,
        "voltage_l3": 230.0,
        "frequency": 50.0,
        "energy_import": 1520.0,
    },
}


def initial_values(model: str, unit: int) -> dict[str, Value]:
    """Initial engineering values of one device (unit id substituted)."""
    return {k: unit if v == UNIT_ID else v for k, v in INITIAL.get(model, {}).items()}
