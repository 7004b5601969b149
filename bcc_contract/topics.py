"""Every MQTT topic BCC uses, built in one place (documented as a table in docs/mqtt.md).

Layout follows Zigbee2MQTT: ``<base>/<device>`` retained JSON state, ``<base>/<device>/set`` commands,
``<base>/<device>/availability``, and ``<base>/bridge/<gateway>/state`` as each gateway's last will
(several gateways share one broker and one base topic, each owning the devices of its site file).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["OFFLINE", "ONLINE", "RESERVED_IDS", "Topics"]

# Device ids that would collide with the topics below (a site file may not use them).
RESERVED_IDS = frozenset({"bridge", "reports", "recorder", "portal", "console", "alarms"})

ONLINE = "online"
OFFLINE = "offline"


@dataclass(frozen=True)
class Topics:
    """Topic builder for one base topic (``mqtt.base_topic`` in the site file)."""

    base: str = "bcc"
    discovery_prefix: str = "homeassistant"

    # --- gateway bridge (one set per gateway: docs/mqtt.md "Fleet") --------------------------
    # ``<gateway>`` is the gateway id: ``gateway.id`` in the site file, else its ``site`` id.
    def _bridge(self, gateway: str, leaf: str) -> str:
        return f"{self.base}/bridge/{gateway}/{leaf}"

    def bridge_state(self, gateway: str) -> str:
        """Retained ``online``/``offline`` of one gateway; ``offline`` is its last will."""
        return self._bridge(gateway, "state")

    def bridge_devices(self, gateway: str) -> str:
        """Retained JSON inventory of the devices one gateway owns (fleet ownership; clean-up of
        devices that left its site)."""
        return self._bridge(gateway, "devices")

    def bridge_sync(self, gateway: str, client_id: str) -> str:
        """Private marker topic: the gateway's own message here proves retained ones were delivered."""
        return self._bridge(gateway, f"sync/{client_id}")

    def bridge_telemetry(self, gateway: str) -> str:
        """Bulk telemetry (``gateway.telemetry_batch_ms``): ``{"<device>": [<state>, ...], ...}``, QoS 1,
        not retained; every state in it was also published on the device's own state topic."""
        return self._bridge(gateway, "telemetry")

    def bridge_health(self, gateway: str) -> str:
        """Retained JSON counters of one gateway (polls, errors, commands)."""
        return self._bridge(gateway, "health")

    def bridge_lease(self, gateway: str) -> str:
        """Retained JSON lease of a gateway run as active and standby (``gateway.lease_s``):
        ``{"holder", "epoch", "ts"}``; the holder re-publishes it every ``lease_s / 3``."""
        return self._bridge(gateway, "lease")

    def bridge_link(self, gateway: str) -> str:
        """Retained ``1``/``0``: whether the building broker of a gateway behind a WAN is bridged to this
        broker. Mosquitto's bridge publishes it (``notification_topic``) and leaves ``0`` as its last
        will on the center's broker, so a WAN cut shows here while the gateway's own state, kept on the
        building's broker, still says ``online`` (docs/mqtt.md, "Buildings behind a WAN")."""
        return self._bridge(gateway, "link")

    def bridge_transactions(self, gateway: str) -> str:
        """Commands the active process of a gateway claims (before writing) and finishes (with the
        response), so a standby taking over never executes one twice (JSON, not retained)."""
        return self._bridge(gateway, "transactions")

    @property
    def all_bridge_states(self) -> str:
        return self.bridge_state("+")

    @property
    def all_bridge_devices(self) -> str:
        return self.bridge_devices("+")

    @property
    def all_bridge_links(self) -> str:
        return self.bridge_link("+")

    def gateway_of_bridge(self, topic: str, leaf: str) -> str | None:
        """Gateway id of a ``<base>/bridge/<gateway>/<leaf>`` topic, or None when the topic is not one."""
        prefix, suffix = f"{self.base}/bridge/", f"/{leaf}"
        if not topic.startswith(prefix) or not topic.endswith(suffix):
            return None
        gateway = topic[len(prefix) : -len(suffix)]
        return gateway if gateway and "/" not in gateway else None

    # --- devices ----------------------------------------------------------------------------
    def state(self, device: str) -> str:
        """Retained JSON state of one device, as the device reported it."""
        return f"{self.base}/{device}"

    def availability(self, device: str) -> str:
        """Retained ``online``/``offline`` of one device."""
        return f"{self.base}/{device}/availability"

    def set(self, device: str) -> str:
        """Commands to one device (JSON, absolute values, optional ``transaction``)."""
        return f"{self.base}/{device}/set"

    def response(self, device: str) -> str:
        """Result of each command, echoing its ``transaction`` (not retained)."""
        return f"{self.base}/{device}/response"

    @property
    def all_set(self) -> str:
        return f"{self.base}/+/set"

    @property
    def all_state(self) -> str:
        return f"{self.base}/+"

    @property
    def all_availability(self) -> str:
        return f"{self.base}/+/availability"

    @property
    def all_response(self) -> str:
        return f"{self.base}/+/response"

    @property
    def everything(self) -> str:
        """Every topic under the base (for watching tools such as ``mosquitto_sub``)."""
        return f"{self.base}/#"

    @staticmethod
    def shared(group: str, topic_filter: str) -> str:
        """An MQTT 5 shared subscription: the broker hands each message to one member of ``group``."""
        return f"$share/{group}/{topic_filter}"

    def device_of_set(self, topic: str) -> str | None:
        """Device id of a ``<base>/<device>/set`` topic, or None when the topic is not one."""
        prefix = self.base + "/"
        if not topic.startswith(prefix) or not topic.endswith("/set"):
            return None
        device = topic[len(prefix) : -len("/set")]
        return device if device and "/" not in device else None

    # --- citizen reports (published by the portal) ---------------------------------------
    @property
    def report_events(self) -> str:
        return f"{self.base}/reports/events"

    @property
    def report_backlog(self) -> str:
        return f"{self.base}/reports/backlog"

    # --- alarms (published by ``bcc alarms``, docs/alarms.md) ------------------------------------
    def alarm_state(self, alarm_id: str) -> str:
        """Retained JSON state of one alarm (``<rule>.<device>``); empty payload: the rule is gone."""
        return f"{self.base}/alarms/state/{alarm_id}"

    @property
    def all_alarm_states(self) -> str:
        return f"{self.base}/alarms/state/+"

    def alarm_of_state(self, topic: str) -> str | None:
        """Alarm id of a ``<base>/alarms/state/<alarm>`` topic, or None when the topic is not one."""
        prefix = self.alarm_state("")
        alarm = topic.removeprefix(prefix) if topic.startswith(prefix) else ""
        return alarm if alarm and "/" not in alarm else None

    @property
    def alarm_events(self) -> str:
        """Every alarm transition (raised, cleared, acked, shelved, unshelved), not retained."""
        return f"{self.base}/alarms/events"

    @property
    def alarm_commands(self) -> str:
        """Operator actions on alarms: JSON ``{"alarm", "action", "by", ...}``, never retained."""
        return f"{self.base}/alarms/command"

    @property
    def alarm_results(self) -> str:
        """The answer to each alarm command (``ok`` or ``rejected``), echoing its ``transaction``."""
        return f"{self.base}/alarms/results"

    def alarm_service(self, instance: str) -> str:
        """Retained ``active``/``standby``/``offline`` of one alarm evaluator (``offline``: its last will)."""
        return f"{self.base}/alarms/status/{instance}"

    # --- recorder (docs/influxdb.md, "Status on MQTT") -------------------------------------------
    def recorder_status(self, instance: str) -> str:
        """Retained JSON of one recorder: ``state`` online/offline (offline: its last will) and whether
        it can write to InfluxDB; an empty payload removes a recorder taken out of service."""
        return f"{self.base}/recorder/status/{instance}"

    @property
    def all_recorder_status(self) -> str:
        return f"{self.base}/recorder/status/+"

    def recorder_of_status(self, topic: str) -> str | None:
        prefix = self.recorder_status("")
        instance = topic.removeprefix(prefix) if topic.startswith(prefix) else ""
        return instance if instance and "/" not in instance else None

    # --- Home Assistant ---------------------------------------------------------------------
    def discovery(self, node_id: str) -> str:
        """Device-based discovery config (retained; empty payload removes the device)."""
        return f"{self.discovery_prefix}/device/{node_id}/config"

    @property
    def ha_status(self) -> str:
        return f"{self.discovery_prefix}/status"
