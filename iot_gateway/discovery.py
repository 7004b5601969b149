"""Home Assistant MQTT device-based discovery payloads, built from the device profiles.

One retained config per device on ``homeassistant/device/<node_id>/config`` with a ``cmps`` map:
relays and display power become switches, the wall layout a select, writable numbers a number,
read-only bools binary sensors, measurements sensors with device_class, unit and state_class.
Every component carries ``qos``: Home Assistant (2025.4) inherits only topics and availability from
the device level, so a top-level ``qos`` would be accepted and ignored, leaving QoS 0.
An empty retained payload removes a device from Home Assistant.
"""

from __future__ import annotations

from typing import Any

import orjson

from bcc_contract.topics import OFFLINE, ONLINE, Topics
from devices.models import DeviceProfile, Point
from devices.site import DeviceInstance
from iot_gateway import __version__

QOS = 1
ORIGIN = {"name": "BCC gateway", "sw": __version__, "url": "https://github.com/binjai-command-center/bcc"}


def node_id(site: str, device: str) -> str:
    return f"bcc_{site}_{device}"


def _value_template(key: str) -> str:
    return "{{ value_json." + key + " }}"


def _command_template(key: str, value: str) -> str:
    """The command Home Assistant publishes: the point's value (``value``, a JSON fragment around the
    template's ``value``) and ``ts``, the send time Home Assistant renders (epoch seconds), which the
    gateway requires to judge the command's age (docs/mqtt.md, "Commands")."""
    return '{"' + key + '": ' + value + ', "ts": {{ as_timestamp(now()) }}}'


def component(point: Point, uid: str, topics: Topics, device: str) -> dict[str, Any]:
    """The ``cmps`` entry of one point."""
    c: dict[str, Any] = {
        "unique_id": f"{uid}_{point.key}",
        "object_id": f"{uid}_{point.key}",
        "name": point.label.en,
        "value_template": _value_template(point.key),
        # Home Assistant subscribes to the state and availability topics and publishes commands at
        # this QoS; QoS 1 as every BCC topic (docs/mqtt.md).
        "qos": QOS,
    }
    command = {"command_topic": topics.set(device)}
    if point.is_bool and point.writable:
        c |= {
            "platform": "switch",
            "payload_on": "ON",
            "payload_off": "OFF",
            "state_on": "ON",
            "state_off": "OFF",
        }
        c |= command | {"command_template": _command_template(point.key, '"{{ value }}"')}
    elif point.is_bool:
        c |= {"platform": "binary_sensor", "payload_on": "ON", "payload_off": "OFF"}
        if point.device_class:
            c["device_class"] = point.device_class
    elif point.enum is not None and point.writable:
        c |= {"platform": "select", "options": list(point.enum.values())}
        c |= command | {"command_template": _command_template(point.key, '"{{ value }}"')}
    elif point.enum is not None:
        c |= {"platform": "sensor", "device_class": "enum", "options": list(point.enum.values())}
    elif point.writable:
        c |= {"platform": "number", "mode": "box", "step": point.scale}
        if point.minimum is not None:
            c["min"] = point.minimum
        if point.maximum is not None:
            c["max"] = point.maximum
        if point.unit and point.unit != "1":
            c["unit_of_measurement"] = point.unit
        c |= command | {"command_template": _command_template(point.key, "{{ value }}")}
    else:
        c["platform"] = "sensor"
        if point.unit and point.unit != "1":
            c["unit_of_measurement"] = point.unit
        if point.device_class:
            c["device_class"] = point.device_class
        if point.state_class:
            c["state_class"] = point.state_class
        if point.precision is not None:
            c["suggested_display_precision"] = point.precision
        if point.group != "default" and not point.device_class:
            c["entity_category"] = "diagnostic"
    return c


def device_config(
    site: str, instance: DeviceInstance, profile: DeviceProfile, topics: Topics, gateway: str
) -> dict[str, Any]:
    """The discovery config of one device; ``gateway`` is the id of the gateway that owns it (its
    bridge state is part of the device's availability)."""
    uid = node_id(site, instance.id)
    device: dict[str, Any] = {
        "identifiers": [uid],
        "name": instance.name,
        "manufacturer": profile.manufacturer,
        "model": profile.label.en,
        "model_id": profile.model,
    }
    if instance.area:
        device["suggested_area"] = instance.area
    return {
        "device": device,
        "origin": ORIGIN,
        "state_topic": topics.state(instance.id),
        "availability": [
            {
                "topic": topics.bridge_state(gateway),
                "payload_available": ONLINE,
                "payload_not_available": OFFLINE,
            },
            {
                "topic": topics.availability(instance.id),
                "payload_available": ONLINE,
                "payload_not_available": OFFLINE,
            },
        ],
        "availability_mode": "all",
        "components": {p.key: component(p, uid, topics, instance.id) for p in profile.points},
    }


def payload(
    site: str, instance: DeviceInstance, profile: DeviceProfile, topics: Topics, gateway: str
) -> bytes:
    return orjson.dumps(device_config(site, instance, profile, topics, gateway))
