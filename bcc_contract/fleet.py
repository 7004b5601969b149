"""Fleet ownership: which gateway owns which device, read from the gateways' retained topics.

Several gateways share one broker and one base topic; each owns the devices of its site file and says
so in its retained inventory ``<base>/bridge/<gateway>/devices``, next to its retained
``<base>/bridge/<gateway>/state`` (``offline`` is its last will). A gateway behind a WAN (its own
broker bridged to the center's) also has ``<base>/bridge/<gateway>/link``, ``1``/``0`` from Mosquitto's
bridge (``0`` its last will on the center): while it is ``0`` the gateway counts as offline, whatever its
state last said before the cut. A gateway that starts reads both for
every gateway and refuses to start when a live gateway (inventory plus ``online``) already owns one of
its devices; the portal's console answers a command to a device whose owner is offline at once
(docs/mqtt.md, "Fleet"); ``bcc alarms`` raises its gateway_offline alarm, saying why (docs/alarms.md).
All three read the retained topics with this one class.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

from bcc_contract.topics import OFFLINE, ONLINE, Topics

# Payloads of Mosquitto's bridge notifications (``notification_topic``): connected, disconnected.
LINK_UP = "1"
LINK_DOWN = "0"
# Why a gateway counts as offline (``FleetView.why_offline``): its building's bridge to the center is
# down, or its own retained state says ``offline``. ``bcc alarms`` puts it in a gateway_offline alarm's
# value (docs/alarms.md).
WAN_LINK_DOWN = "wan_link_down"

__all__ = [
    "LINK_DOWN",
    "LINK_UP",
    "WAN_LINK_DOWN",
    "FleetConflict",
    "FleetView",
    "conflicts",
    "inventory_devices",
]


class FleetConflict(Exception):
    """Devices of this site are owned by another live gateway: the gateway must not start."""

    def __init__(self, gateway: str, claims: dict[str, list[str]]) -> None:
        self.gateway = gateway
        self.claims = claims  # owner gateway -> devices of ours it owns
        owned = "; ".join(
            f"{', '.join(devs)} owned by gateway {owner!r} (online)" for owner, devs in claims.items()
        )
        super().__init__(
            f"gateway {gateway!r} refuses to start: device ids must be unique across the fleet: {owned}"
        )

    @staticmethod
    def first(group: BaseExceptionGroup[FleetConflict]) -> FleetConflict:
        """The conflict inside the group a TaskGroup raised (``except* FleetConflict``)."""
        for exc in group.exceptions:
            if isinstance(exc, FleetConflict):
                return exc
            if isinstance(exc, BaseExceptionGroup):
                return FleetConflict.first(exc)
        raise ValueError("no FleetConflict in the group")


def inventory_devices(payload: bytes) -> set[str] | None:
    """The device ids of a retained inventory, or None when the payload is empty or not one."""
    try:
        body = orjson.loads(payload) if payload else None
    except orjson.JSONDecodeError:
        return None
    devices = body.get("devices") if isinstance(body, dict) else None
    if not isinstance(devices, list):
        return None
    return {d for d in devices if isinstance(d, str)}


@dataclass
class FleetView:
    """Every gateway's retained inventory and state, as they arrive (empty payload: gone)."""

    topics: Topics
    inventories: dict[str, set[str]] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)  # bridge notifications, of gateways behind a WAN

    def handle(self, topic: str, payload: bytes) -> bool:
        """Take a message if it is a bridge inventory or state; True when it was one."""
        if (gw := self.topics.gateway_of_bridge(topic, "devices")) is not None:
            self.set_inventory(gw, payload)
            return True
        if (gw := self.topics.gateway_of_bridge(topic, "state")) is not None:
            self.set_state(gw, payload)
            return True
        if (gw := self.topics.gateway_of_bridge(topic, "link")) is not None:
            self.set_link(gw, payload)
            return True
        return False

    def set_inventory(self, gateway: str, payload: bytes) -> None:
        devices = inventory_devices(payload)
        if devices is None:
            self.inventories.pop(gateway, None)
        else:
            self.inventories[gateway] = devices

    def set_state(self, gateway: str, payload: bytes) -> None:
        if payload:
            self.states[gateway] = payload.decode(errors="replace")
        else:
            self.states.pop(gateway, None)

    def set_link(self, gateway: str, payload: bytes) -> None:
        if payload:
            self.links[gateway] = payload.decode(errors="replace").strip()
        else:
            self.links.pop(gateway, None)

    def link_down(self, gateway: str) -> bool:
        """True while the bridge of the gateway's building is down (its link says ``0``)."""
        return self.links.get(gateway) == LINK_DOWN

    def why_offline(self, gateway: str) -> str | None:
        """Why the center counts the gateway offline: WAN_LINK_DOWN while its building's bridge is down
        (whatever its state last said), OFFLINE when its own state says so; None when it is online or
        nothing is known of it."""
        if self.link_down(gateway):
            return WAN_LINK_DOWN
        return OFFLINE if self.states.get(gateway) == OFFLINE else None

    def state_of(self, gateway: str) -> str | None:
        """The gateway's state as the center sees it: ``offline`` while its building's bridge is down."""
        return OFFLINE if self.why_offline(gateway) else self.states.get(gateway)

    def shown_states(self) -> dict[str, str]:
        """Every gateway's state as ``state_of`` says (the console's list)."""
        return {gw: state for gw in sorted({*self.states, *self.links}) if (state := self.state_of(gw))}

    def offline_owner(self, device: str) -> str | None:
        """The gateway that owns ``device`` when it is not online (its commands cannot be answered)."""
        owner = self.owner(device)
        return owner if owner is not None and not self.online(owner) else None

    def owner(self, device: str) -> str | None:
        """The gateway whose inventory lists ``device`` (None: no gateway claims it)."""
        return self.owner_other_than(device, None)

    def owner_other_than(self, device: str, gateway: str | None) -> str | None:
        """A gateway other than ``gateway`` whose inventory lists ``device``, preferring a live one."""
        found = [
            gw for gw, devices in sorted(self.inventories.items()) if gw != gateway and device in devices
        ]
        live = [gw for gw in found if self.online(gw)]
        return next(iter(live or found), None)

    def online(self, gateway: str) -> bool:
        return self.state_of(gateway) == ONLINE


def conflicts(view: FleetView, gateway: str, devices: Iterable[str]) -> dict[str, list[str]]:
    """Devices of ``gateway`` that another live gateway owns: owner -> sorted device ids."""
    found: dict[str, list[str]] = {}
    wanted = set(devices)
    for owner, owned in sorted(view.inventories.items()):
        if owner == gateway or not view.online(owner):
            continue
        if clash := sorted(wanted & owned):
            found[owner] = clash
    return found
