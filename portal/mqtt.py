"""Publishes report events and the backlog gauge to MQTT as the ``portal`` role (topics: docs/portal.md).

paho runs its network loop in its own thread, so sync routes can publish directly; the backlog task runs
on the app's event loop. Publishing never raises into a request: the SQL database is the source of truth
and a broker outage only costs Grafana some events (logged once when the connection changes).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import tempfile
import threading
from collections.abc import Callable
from datetime import datetime
from io import TextIOWrapper
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.orm import Session, sessionmaker

from bcc_contract.accounts import account_names
from bcc_contract.topics import Topics
from portal.config import PortalMqttSettings
from portal.services.events import backlog

if TYPE_CHECKING:
    from portal.services.room import LiveRoom

log = structlog.get_logger(__name__)


class MqttAccountsExhausted(RuntimeError):
    """Every broker account of the portal is held by another running worker."""


def _lock_dir(settings: PortalMqttSettings) -> Path:
    """Where the workers of one portal on this host claim their accounts: systemd's RuntimeDirectory=
    (private to the service) or the temporary directory, one folder per broker and role, ours only."""
    base = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0] or tempfile.gettempdir()
    path = Path(base) / f"bcc-mqtt-{settings.host}-{settings.port}-{settings.username}"
    path.mkdir(mode=0o700, exist_ok=True)
    if path.stat().st_uid != os.getuid():
        raise MqttAccountsExhausted(f"{path} belongs to another user: remove it or set RUNTIME_DIRECTORY")
    return path


def claim_account(settings: PortalMqttSettings) -> tuple[str, TextIOWrapper | None]:
    """The broker account this process logs in as, and the lock that holds it until the process ends.

    The broker makes each client's id its username, so two workers on one account would disconnect
    each other: each worker takes the first free ``portal_<k>`` of ``settings.accounts`` by an exclusive
    flock on ``<lock dir>/<k>.lock``. The kernel releases it when the worker dies, so a restarted worker
    finds its account again. One account (``accounts = 1``) is the username itself, with no lock.
    """
    names = account_names(settings.username, settings.accounts)
    if len(names) == 1:
        return names[0], None
    folder = _lock_dir(settings)
    for k, name in enumerate(names, start=1):
        lock = (folder / f"{k}.lock").open("a", encoding="utf-8")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        return name, lock
    raise MqttAccountsExhausted(
        f"all {settings.accounts} MQTT accounts of {settings.username!r} are in use by other workers; "
        "run fewer workers or raise BCC_PORTAL_MQTT_ACCOUNTS (and `bcc broker passwd/acl --accounts`)"
    )


class MqttEventSink:
    """The production :class:`~portal.services.events.EventSink`."""

    def __init__(self, settings: PortalMqttSettings, room: LiveRoom | None = None) -> None:
        # The broker replaces the client id by the username (use_username_as_clientid): say it as it is.
        self.account, self._account_lock = claim_account(settings)
        client_id = self.account
        self.settings = settings
        self.room = room
        self.topics = Topics(base=settings.base_topic)
        protocol = mqtt.MQTTv5 if settings.protocol == "5" else mqtt.MQTTv311
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
        self.client.username_pw_set(self.account, settings.password.get_secret_value())
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.max_queued_messages_set(10_000)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.connected = threading.Event()
        self._changed = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if not reason.is_failure:
            self.connected.set()
            if self.room is not None:  # the console's live view: retained state arrives at once
                t = self.topics
                client.subscribe(
                    [
                        (t.all_state, 1),
                        (t.availability("+"), 1),
                        (t.response("+"), 1),
                        (t.all_bridge_states, 1),
                        (t.all_bridge_devices, 1),
                        (t.all_bridge_links, 1),
                        (t.all_alarm_states, 1),
                    ]
                )
            log.info(
                "portal_mqtt_connected",
                host=self.settings.host,
                port=self.settings.port,
                account=self.account,
            )
        else:
            log.warning("portal_mqtt_refused", reason=str(reason))

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if self.connected.is_set():
            log.warning("portal_mqtt_disconnected", reason=str(reason))
        self.connected.clear()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        room = self.room
        if room is None:
            return
        try:
            text = msg.payload.decode("utf-8", errors="replace")
            parts = msg.topic.removeprefix(self.topics.base + "/").split("/")
            if (gateway := self.topics.gateway_of_bridge(msg.topic, "state")) is not None:
                room.on_bridge(gateway, text)
            elif (gateway := self.topics.gateway_of_bridge(msg.topic, "devices")) is not None:
                room.on_inventory(gateway, bytes(msg.payload))
            elif (gateway := self.topics.gateway_of_bridge(msg.topic, "link")) is not None:
                room.on_link(gateway, text)
            elif (alarm := self.topics.alarm_of_state(msg.topic)) is not None:
                room.on_alarm(alarm, json.loads(text) if text else None)
            elif len(parts) == 1:
                room.on_state(parts[0], json.loads(text) if text else None)
            elif len(parts) == 2 and parts[1] == "availability":
                room.on_availability(parts[0], text)
            elif len(parts) == 2 and parts[1] == "response":
                room.on_response(parts[0], json.loads(text))
        except Exception as err:  # one bad message must never stop the client thread
            log.warning("portal_mqtt_bad_message", topic=msg.topic, error=repr(err))

    def publish_command(self, device: str, payload: dict[str, Any]) -> bool:
        """Publish a command (never retained); False when the broker cannot take it now."""
        if not self.connected.is_set():
            return False
        try:
            info = self.client.publish(
                self.topics.set(device), json.dumps(payload, separators=(",", ":")), qos=1, retain=False
            )
        except Exception as err:
            log.warning("portal_mqtt_publish_failed", topic=self.topics.set(device), error=repr(err))
            return False
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def publish_alarm_command(self, payload: dict[str, Any]) -> bool:
        """Publish an operator's action on an alarm (never retained; docs/alarms.md)."""
        if not self.connected.is_set():
            return False
        topic = self.topics.alarm_commands
        try:
            info = self.client.publish(topic, json.dumps(payload, separators=(",", ":")), qos=1, retain=False)
        except Exception as err:
            log.warning("portal_mqtt_publish_failed", topic=topic, error=repr(err))
            return False
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.client.connect_async(self.settings.host, self.settings.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self.connected.clear()  # a requested disconnect is not worth a warning
        self.client.disconnect()
        self.client.loop_stop()
        if self._account_lock is not None:
            self._account_lock.close()  # closing the file releases the flock: the account is free again
            self._account_lock = None

    def _publish(self, topic: str, payload: dict[str, Any], retain: bool) -> None:
        try:
            self.client.publish(topic, json.dumps(payload, separators=(",", ":")), qos=1, retain=retain)
        except Exception as err:  # a report must never fail because the broker is unreachable
            log.warning("portal_mqtt_publish_failed", topic=topic, error=repr(err))

    def report_event(self, payload: dict[str, Any]) -> None:
        self._publish(self.topics.report_events, payload, retain=False)

    def publish_backlog(self, payload: dict[str, Any]) -> None:
        self._publish(self.topics.report_backlog, payload, retain=True)

    def backlog_changed(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._changed.set)

    async def run_backlog(self, sessions: sessionmaker[Session], clock: Callable[[], datetime]) -> None:
        """Publish the retained backlog now, every ``backlog_interval_s`` and soon after each change."""
        while True:
            try:
                snapshot = await asyncio.to_thread(_snapshot, sessions, clock)
                self.publish_backlog(snapshot)
            except Exception as err:
                log.warning("portal_backlog_failed", error=repr(err))
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=self.settings.backlog_interval_s)
                await asyncio.sleep(0.2)  # coalesce a burst of transitions into one gauge
            except TimeoutError:
                pass


def _snapshot(sessions: sessionmaker[Session], clock: Callable[[], datetime]) -> dict[str, Any]:
    with sessions() as db:
        return backlog(db, clock())
