"""Validate BCC discovery payloads with Home Assistant's own MQTT schemas.

Runs inside a separate virtualenv that has the ``homeassistant`` package (it needs Python 3.13 and
conflicts with nothing of ours only because it lives apart). Input: a JSON file mapping topic ->
payload. Output: one line per problem, then a summary and the QoS each validated component ends up
with (what Home Assistant subscribes and publishes at); exit code 1 if any problem.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import voluptuous as vol
from homeassistant import core
from homeassistant.components.mqtt import discovery
from homeassistant.components.mqtt.schemas import DEVICE_DISCOVERY_SCHEMA
from homeassistant.core import HomeAssistant


async def main(path: str, config_dir: str) -> int:
    # Schemas with templates look for a running HomeAssistant instance (as inside HA itself).
    hass = HomeAssistant(config_dir)
    with _hass_context(hass):
        return validate(path)


def _hass_context(hass: HomeAssistant) -> contextlib.AbstractContextManager[None]:
    @contextlib.contextmanager
    def ctx() -> Iterator[None]:
        token = core._hass.hass
        core._hass.hass = hass
        try:
            yield
        finally:
            core._hass.hass = token

    return ctx()


def validate(path: str) -> int:
    with open(path, encoding="utf-8") as fh:
        payloads: dict[str, dict[str, Any]] = json.load(fh)
    problems: list[str] = []
    checked = 0
    qos: dict[int, int] = {}
    for topic, payload in payloads.items():
        device = dict(payload)
        discovery._replace_all_abbreviations(device)  # what HA does on receipt
        try:
            DEVICE_DISCOVERY_SCHEMA(device)
        except vol.Invalid as exc:
            problems.append(f"{topic}: device: {exc}")
            continue
        common = {k: v for k, v in device.items() if k != "components"}
        for key, component in device["components"].items():
            config = dict(component)
            discovery._merge_common_device_options(config, common)  # inherit state topic, availability
            platform = config.pop("platform")
            schema = importlib.import_module(f"homeassistant.components.mqtt.{platform}").DISCOVERY_SCHEMA
            try:
                validated = schema(config)
                checked += 1
                qos[validated["qos"]] = qos.get(validated["qos"], 0) + 1
            except vol.Invalid as exc:
                problems.append(f"{topic}: component {key} ({platform}): {exc}")
    for line in problems:
        print(line)
    print(f"checked {checked} components of {len(payloads)} devices, {len(problems)} problems")
    print("components by qos: " + json.dumps(qos, sort_keys=True))
    return 1 if problems else 0


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        sys.exit(asyncio.run(main(sys.argv[1], tmp)))
