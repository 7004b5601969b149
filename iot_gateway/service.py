"""The gateway service: hubs, device runners and the MQTT link, wired together in one TaskGroup.

Also owns what spans devices: Home Assistant discovery (sent on connect, when Home Assistant comes
online, and removed for devices that left the site), the retained device inventory that makes that
removal possible across restarts and tells the fleet which devices this gateway owns, the start-up
ownership check (bcc_contract.fleet), SIGHUP reloads, and the health endpoint; with ``gateway.lease_s``
the active/standby life cycle (the rules are in iot_gateway.failover; here only where they meet the
command path and the connection, which is why this module is longer than most).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import socket
import time
from typing import Any

import aiomqtt
import orjson
import structlog

from bcc_common.lease import LeaseChange
from bcc_contract.commands import CommandStatus, response_payload
from bcc_contract.fleet import FleetConflict, FleetView, conflicts
from bcc_contract.topics import OFFLINE, ONLINE, Topics
from devices.site import DeviceInstance
from iot_gateway import discovery
from iot_gateway.bulk import TelemetryBatcher, TelemetrySpool
from iot_gateway.commands import (
    Command,
    CommandRejected,
    TransactionLog,
    parse_command,
    transaction_of,
)
from iot_gateway.config import GatewayConfig
from iot_gateway.device import DeviceRunner
from iot_gateway.failover import CommandShare, LeaseLost, SharedLease, command_key
from iot_gateway.health import HealthServer
from iot_gateway.hub import BusHub
from iot_gateway.metrics import GatewayMetrics
from iot_gateway.mqtt import MqttLink
from iot_gateway.outbox import RetainedOutbox

log = structlog.get_logger(__name__)
COMMANDS_MARKER = b"commands"  # on bridge/<gw>/sync/<client>: the command subscription's retained are in
LEASE_TICK_S = 0.1  # how often an active/standby process looks at its lease


class Gateway:
    def __init__(
        self, config: GatewayConfig, client_id: str | None = None, instance: str | None = None
    ) -> None:
        self.config = config
        self.settings = config.loaded.site.gateway
        self.site_id = config.loaded.site.site
        self.gateway_id = config.loaded.site.gateway_id
        # Active and standby (gateway.lease_s, iot_gateway.failover): this process's name in the lease.
        self.instance = instance or f"{socket.gethostname()}-{os.getpid()}"
        lease_s = self.settings.lease_s
        self.lease = SharedLease(self.instance, lease_s) if lease_s is not None else None
        self.share = CommandShare(self.settings.command_ttl_s) if lease_s is not None else None
        self._lost = asyncio.Event()  # the lease went to another process: stop
        self._synced = False  # the retained lease has arrived on this connection
        self._replaying = False  # taking over: new commands queue behind the ones the standby kept
        self.topics = Topics(config.mqtt.base_topic, config.mqtt.discovery_prefix)
        self.metrics = GatewayMetrics()
        self.hubs: dict[str, BusHub] = {}
        self.devices: dict[str, DeviceRunner] = {}
        self.telemetry: TelemetryBatcher | None = None
        if self.settings.telemetry_batch_ms is not None:
            path = self.settings.telemetry_spool_path
            self.telemetry = TelemetryBatcher(
                self._publish_ok,
                self.topics.bridge_telemetry(self.gateway_id),
                self.settings.telemetry_batch_ms / 1000,
                self.metrics.telemetry_states,
                self.metrics.telemetry_dropped,
                max_pending=self.settings.telemetry_max_pending,
                spool=TelemetrySpool(path) if path is not None else None,  # SpoolError: cannot open
            )
            batcher = self.telemetry
            self.metrics.telemetry_pending.set_function(lambda: batcher.pending)
        cid = (
            client_id
            or config.mqtt.client_id
            or f"bcc-{self.settings.name}-{socket.gethostname()}-{os.getpid()}"
        )
        self.link = MqttLink(
            config.mqtt,
            self.topics.bridge_state(self.gateway_id),
            cid,
            config.password,
            self._on_connect,
            self._on_message,
            self.metrics,
            self._wanted,
        )
        # Device states and availability: polls hand them over and never wait for a PUBACK.
        self.outbox = RetainedOutbox(self.link)
        self.metrics.states_waiting.set_function(lambda: self.outbox.waiting)
        self._tasks: dict[str, list[asyncio.Task[None]]] = {}
        self._tg: asyncio.TaskGroup | None = None
        for inst in config.loaded.site.devices:
            self._add_device(inst, config)
        self.transactions = TransactionLog(self.settings.transaction_memory)
        self.commands_seen = 0
        self.health = HealthServer(self.metrics.registry, self.health_status)
        self._inventory_seen: asyncio.Event = asyncio.Event()
        # False from connect until our marker after the command subscription comes back: a retained
        # command before it was delivered at subscribe time (stale), one after it was published live.
        self._commands_live = False
        self.fleet = FleetView(self.topics)  # every gateway's retained inventory and state
        self._started = False  # devices poll only once the first connection's ownership check passed
        self._checked = False  # the ownership check ran (on the first connection only)
        self._gone: set[str] = set()  # devices an earlier run announced that left the site
        self._connected_at = 0.0  # epoch s of the current connection's start (Gateway._announce)

    # --- devices --------------------------------------------------------------------------
    def _hub_for(self, inst: DeviceInstance, config: GatewayConfig) -> BusHub:
        bus = config.loaded.site.bus(inst.bus)
        hub = self.hubs.get(bus.name)
        if hub is None or hub.bus != bus:
            hub = self.hubs[bus.name] = BusHub(bus)
        return hub

    def _add_device(self, inst: DeviceInstance, config: GatewayConfig) -> DeviceRunner:
        runner = DeviceRunner(
            inst,
            config.loaded.profile_of(inst),
            self._hub_for(inst, config),
            self.settings,
            self.topics,
            self.outbox.put,
            self.metrics,
            self.telemetry.add if self.telemetry is not None else None,
            self.may_act,
        )
        self.devices[inst.id] = runner
        if self._tg is not None and self._started:
            self._tasks[inst.id] = runner.start(self._tg)
        return runner

    async def _remove_device(self, device_id: str, forget: bool) -> None:
        self._tasks.pop(device_id, None)
        runner = self.devices.pop(device_id, None)
        if runner is not None:
            runner.stop()
        retained = (self.topics.state(device_id), self.topics.availability(device_id))
        if forget:  # clear retained topics so nobody sees a ghost device
            self.outbox.discard(retained)  # a state still waiting must not follow the clearing
            for topic in retained:
                await self._publish(topic, b"", True)
            await self._publish(self.topics.discovery(discovery.node_id(self.site_id, device_id)), b"", True)

    def may_act(self) -> bool:
        """Whether this process may poll and write: always, unless it runs with a lease it does not hold."""
        return self.lease is None or self.lease.active(time.monotonic())

    def _start_devices(self) -> None:
        """Start every device's poll tasks (after the ownership check: nothing is polled before it)."""
        if self._started or self._tg is None:
            return
        self._started = True
        for dev in self.devices.values():
            self._tasks[dev.id] = dev.start(self._tg)
        # What start-up built (site, profiles, decoders, runners) lives as long as the process: out of
        # the collector's way, so a full collection walks only what polling allocates since (the
        # alarm service does the same; docs/performance.md).
        gc.collect()  # garbage frozen now would never be freed
        gc.freeze()

    async def _publish(self, topic: str, payload: bytes, retain: bool) -> None:
        await self.link.publish(topic, payload, retain=retain)

    async def _publish_ok(self, topic: str, payload: bytes, retain: bool) -> bool:
        return await self.link.publish(topic, payload, retain=retain)

    async def publish_discovery(self) -> None:
        for runner in self.devices.values():
            body = discovery.payload(
                self.site_id, runner.instance, runner.profile, self.topics, self.gateway_id
            )
            await self._publish(self.topics.discovery(discovery.node_id(self.site_id, runner.id)), body, True)

    async def _publish_inventory(self) -> None:
        body = orjson.dumps(
            {"site": self.site_id, "gateway": self.gateway_id, "devices": sorted(self.devices)}
        )
        await self._publish(self.topics.bridge_devices(self.gateway_id), body, True)

    async def _sync_fleet(self, link: MqttLink) -> None:
        """Read every gateway's retained inventory and state: refuse to start on a device a live gateway
        already owns, and remove the devices an earlier run of ours announced that left the site.

        The retained messages arrive right after SUBACK; our own marker, published after them, proves
        that anything retained has already been delivered (per-session ordering).
        """
        self._inventory_seen.clear()
        await link.subscribe(self.topics.all_bridge_devices)
        await link.subscribe(self.topics.all_bridge_states)
        if self.lease is not None:  # covered by the same marker: the retained lease is in when it returns
            await link.subscribe(self.topics.bridge_lease(self.gateway_id))
            await link.subscribe(self.topics.bridge_transactions(self.gateway_id))
        await link.subscribe(self.topics.bridge_sync(self.gateway_id, link.client_id))
        await link.publish(self.topics.bridge_sync(self.gateway_id, link.client_id), b"sync", retain=False)
        # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self._inventory_seen.wait()
        claims = conflicts(self.fleet, self.gateway_id, self.devices)
        if claims and not self._checked:  # checked at start, before anything is polled
            raise FleetConflict(self.gateway_id, claims)
        self._checked = True
        if claims:  # another gateway started with our devices while we were away: say so loudly
            log.error("fleet_conflict", gateway=self.gateway_id, claims=claims)
        self._gone |= self.fleet.inventories.get(self.gateway_id, set()) - set(self.devices)

    async def _clear_gone(self) -> None:
        """Clear the topics of devices an earlier run announced that left the site (not moved ones)."""
        leaving, self._gone = self._gone, set()
        for gone in sorted(leaving):
            owner = self.fleet.owner_other_than(gone, self.gateway_id)
            if owner is not None:  # moved to another gateway's site: its state is not ours to clear
                log.info("device_moved_to_gateway", device=gone, owner=owner)
                continue
            log.info("device_removed_from_site", device=gone)
            await self._remove_device(gone, forget=True)

    # --- MQTT -----------------------------------------------------------------------------
    async def _on_connect(self, link: MqttLink) -> None:
        self._connected_at = time.time()  # states polled from now on go out on this connection
        self._commands_live = False
        self._synced = False
        await self._sync_fleet(link)  # FleetConflict on the first connection: the gateway stops
        if self.lease is None:
            await link.publish(self.topics.bridge_state(self.gateway_id), ONLINE, retain=True)
            self._start_devices()
        await link.subscribe(self.topics.all_set)
        await link.publish(
            self.topics.bridge_sync(self.gateway_id, link.client_id), COMMANDS_MARKER, retain=False
        )
        await link.subscribe(self.topics.ha_status)
        if self.lease is None:
            await self._announce()
            return
        self._synced = True  # the lease loop may claim from now on
        if self.lease.active(time.monotonic()):  # a reconnect while holding the lease
            await self._go_live()
        else:
            log.info(
                "gateway_standby", gateway=self.gateway_id, instance=self.instance, epoch=self.lease.epoch
            )

    async def _announce(self) -> None:
        """What a live gateway publishes on every connect: discovery, inventory, every device's state."""
        await self._clear_gone()
        await self.publish_discovery()
        await self._publish_inventory()
        self.outbox.flush()  # what waited for this connection, then every device's current state
        for dev in self.devices.values():
            dev.republish(self._connected_at)

    async def _go_live(self) -> None:
        await self._publish(self.topics.bridge_state(self.gateway_id), ONLINE.encode(), True)
        self._start_devices()
        await self._announce()

    # --- active and standby (iot_gateway.failover) -----------------------------------------------
    async def _lease_loop(self) -> None:
        """Renew the lease while holding it, claim it when it is free or expired, stop when it is lost."""
        assert self.lease is not None
        while True:
            await asyncio.sleep(LEASE_TICK_S)
            now = time.monotonic()
            if self.lease.expired(now):
                log.error("gateway_lease_lost", instance=self.instance, reason="renewals not confirmed")
                self._lost.set()
                return
            if not self.link.connected.is_set() or not self._synced:
                continue
            record = self.lease.renewal(now) or self.lease.claim(now)
            if record is not None:
                await self._publish(self.topics.bridge_lease(self.gateway_id), record.payload(), True)

    async def _on_lease(self, payload: bytes) -> None:
        assert self.lease is not None
        change = self.lease.on_message(payload, time.monotonic())
        if change is LeaseChange.GAINED:
            await self._take_over()
        elif change is LeaseChange.LOST:
            holder = self.lease.current.holder if self.lease.current else None
            log.error("gateway_lease_lost", instance=self.instance, holder=holder, epoch=self.lease.epoch)
            self._lost.set()

    async def _take_over(self) -> None:
        """Poll, publish and answer from now on; settle what the previous holder left."""
        assert self.lease is not None and self.share is not None
        # Before any await: from now on live commands queue behind the ones the standby kept.
        self._replaying = True
        try:
            await self._settle(self.share)
        finally:
            self._replaying = False

    async def _settle(self, share: CommandShare) -> None:
        assert self.lease is not None
        log.info("gateway_active", gateway=self.gateway_id, instance=self.instance, epoch=self.lease.epoch)
        for device, txn, body in share.finished:  # a repeated transaction gets the same answer
            self.transactions.remember(device, txn, body)
        share.finished.clear()
        await self._go_live()
        unfinished, share.unfinished = share.unfinished, {}
        for device, transaction in unfinished.values():  # claimed, maybe written: never repeated
            error = "the previous active gateway stopped while executing it; not repeated"
            body = response_payload(device, transaction, CommandStatus.TIMEOUT, error)
            if transaction is not None:
                self.transactions.remember(device, transaction, body)
            await self._respond(device, body, CommandStatus.TIMEOUT)
        # Nobody claimed these: ours now, in arrival order (their TTL still applies); commands arriving
        # meanwhile queue behind them, so each device sees its commands in the order they were sent.
        while share.waiting:
            _, w = share.waiting.popitem(last=False)
            await self.handle_command(w.topic, w.payload, False, replay=True)

    async def _share_record(
        self, phase: str, key: str, device: str, txn: str | None, body: bytes | None = None
    ) -> bool:
        record = CommandShare.record(phase, key, device, txn, body)
        return await self._publish_ok(self.topics.bridge_transactions(self.gateway_id), record, False)

    def _wanted(self, topic: str) -> bool:
        """Every topic but commands to devices this gateway does not serve (dropped first in a flood)."""
        device = self.topics.device_of_set(topic)
        return device is None or device in self.devices

    async def _on_message(self, message: aiomqtt.Message) -> None:
        topic = str(message.topic)
        payload = (
            message.payload if isinstance(message.payload, bytes) else str(message.payload or "").encode()
        )
        try:
            if topic == self.topics.ha_status:
                # Home Assistant restarted: it forgot non-retained state (a standby publishes nothing).
                if payload == b"online" and self.may_act():
                    await self.publish_discovery()
            elif self.lease is not None and topic == self.topics.bridge_lease(self.gateway_id):
                await self._on_lease(payload)
            elif self.share is not None and topic == self.topics.bridge_transactions(self.gateway_id):
                if not self.may_act():  # the active process's own records need no bookkeeping
                    self.share.on_record(payload)
            elif self.fleet.handle(topic, payload):
                own_state = topic == self.topics.bridge_state(self.gateway_id)
                if own_state and payload == OFFLINE.encode() and self.lease is not None and self.may_act():
                    # Every process of the gateway carries its last will: a standby died, not us.
                    await self._publish(topic, ONLINE.encode(), True)
            elif topic == self.topics.bridge_sync(self.gateway_id, self.link.client_id):
                if payload == COMMANDS_MARKER:
                    self._commands_live = True
                else:
                    self._inventory_seen.set()
            else:
                await self.handle_command(topic, payload, message.retain)
        except Exception:  # one bad message must never stop the gateway
            log.exception("message_handler_failed", topic=topic)

    async def _respond(self, device: str, payload: bytes, status: CommandStatus) -> None:
        self.metrics.commands.labels(status.value).inc()
        await self.link.publish(self.topics.response(device), payload, retain=False)

    async def handle_command(self, topic: str, payload: bytes, retained: bool, replay: bool = False) -> None:
        started = time.monotonic()
        device_id = self.topics.device_of_set(topic)
        if device_id is None:
            return
        runner = self.devices.get(device_id)
        if runner is None:  # another gateway's device (or nobody's): never answered, never counted as ours
            self.metrics.commands_not_owned.inc()
            return
        if retained:
            await self._refuse_retained(device_id, payload)
            return
        # Active/standby: what identifies this command for the other processes of the gateway.
        key = command_key(device_id, transaction_of(payload), payload) if self.share is not None else ""
        if self.share is not None and (not self.may_act() or (self._replaying and not replay)):
            # Standby: keep it until the active claims it (or we take over and run it ourselves).
            self.share.received(key, topic, payload, time.monotonic())
            return
        self.commands_seen += 1
        try:
            cmd = parse_command(
                device_id,
                runner.profile,
                payload,
                max_bytes=self.settings.max_payload_bytes,
                now=time.time(),
                ttl_s=self.settings.command_ttl_s,
                require_ts=self.settings.require_command_ts,
            )
        except CommandRejected as err:
            log.info("command_refused", device=device_id, status=err.status.value, error=str(err))
            body = response_payload(device_id, err.transaction, err.status, str(err))
            await self._answer(key, device_id, err.transaction, body, err.status, started)
            return
        future: asyncio.Future[bytes] | None = None
        if cmd.transaction is not None:
            first, future = self.transactions.claim(device_id, cmd.transaction)
            if not first:
                body = await asyncio.shield(future)
                status = CommandStatus(orjson.loads(body)["status"])
                await self._answer(key, device_id, cmd.transaction, body, status, started)
                return
        if self.lease is not None and not await self._share_record(
            "claimed", key, device_id, cmd.transaction
        ):
            # Without the broker's acknowledgement a standby could not know: never write then.
            outcome: tuple[CommandStatus, str | None, dict[str, Any] | None] = (
                CommandStatus.DEVICE_UNAVAILABLE,
                "the claim was not acknowledged",
                None,
            )
        else:
            outcome = await self._execute(runner, cmd)
        status, error, state = outcome
        body = response_payload(device_id, cmd.transaction, status, error, state)
        if future is not None and not future.done():
            future.set_result(body)
        log.info(
            "command_done", device=device_id, transaction=cmd.transaction, status=status.value, error=error
        )
        await self._answer(key, device_id, cmd.transaction, body, status, started)

    async def _answer(
        self, key: str, device: str, txn: str | None, body: bytes, status: CommandStatus, started: float
    ) -> None:
        """Respond; with a standby, first share the answer (a retry after the response finds it there,
        and the standby forgets the command). ``started``: when the command reached its handler."""
        if self.share is not None:
            await self._share_record("done", key, device, txn, body)
        await self._respond(device, body, status)
        self.metrics.command_seconds.observe(time.monotonic() - started)

    async def _refuse_retained(self, device_id: str, payload: bytes) -> None:
        """A retained command would re-fire on every (re)subscribe: never act on one.

        One published live with the retain flag (visible over MQTT 5 through Retain-As-Published) is
        answered, so its sender learns why; one delivered at subscribe time is stale: only counted.
        An empty retained payload is someone clearing a retained command, not a command.
        """
        if not payload:
            return
        live = self._commands_live  # read before any await: handlers start in arrival order
        self.metrics.retained_commands_ignored.inc()
        log.warning("retained_command_ignored", device=device_id, live=live)
        if live:
            error = "retained commands are never executed; publish without the retain flag"
            body = response_payload(device_id, transaction_of(payload), CommandStatus.REJECTED, error)
            await self._respond(device_id, body, CommandStatus.REJECTED)

    async def _execute(
        self, runner: DeviceRunner, cmd: Command
    ) -> tuple[CommandStatus, str | None, dict[str, Any] | None]:
        try:
            async with asyncio.timeout(self.settings.command_deadline_ms / 1000):
                return await runner.execute(cmd)
        except TimeoutError:
            return (
                CommandStatus.TIMEOUT,
                f"no confirmation within {self.settings.command_deadline_ms} ms",
                None,
            )

    # --- reload -----------------------------------------------------------------------------
    async def reload(self, new: GatewayConfig) -> dict[str, list[str]]:
        """Apply a new site: start added devices, stop removed ones, keep unchanged ones polling.

        A device counts as changed when its instance, profile or bus settings differ; it is restarted.
        MQTT and gateway-wide settings need a restart (logged). Nothing is ever written to a device.
        """
        old_ids, new_ids = set(self.devices), {d.id for d in new.loaded.site.devices}
        changed = []
        for inst in new.loaded.site.devices:
            cur = self.devices.get(inst.id)
            if cur is None:
                continue
            same_bus = cur.hub.bus == new.loaded.site.bus(inst.bus)
            if cur.instance != inst or cur.profile != new.loaded.profile_of(inst) or not same_bus:
                changed.append(inst.id)
        if new.mqtt != self.config.mqtt or new.loaded.site.gateway != self.settings:
            log.warning("reload_needs_restart", reason="mqtt or gateway settings changed; not applied")
        removed = sorted(old_ids - new_ids)
        for device_id in removed:  # a standby leaves the clearing to the active process
            await self._remove_device(device_id, forget=self.may_act())
        for device_id in changed:
            await self._remove_device(device_id, forget=False)
        for inst in new.loaded.site.devices:
            if inst.id not in self.devices:
                self._add_device(inst, new)
        used = {r.hub.name for r in self.devices.values()}
        for name in [n for n in self.hubs if n not in used]:
            await self.hubs.pop(name).close()
        self.config = GatewayConfig(loaded=new.loaded, mqtt=self.config.mqtt, password=self.config.password)
        if self.may_act():
            await self.publish_discovery()
            await self._publish_inventory()
        result = {"added": sorted(new_ids - old_ids), "removed": removed, "changed": sorted(changed)}
        log.info("site_reloaded", **result)
        return result

    # --- health -----------------------------------------------------------------------------
    def health_status(self) -> tuple[bool, dict[str, object]]:
        online = sum(1 for d in self.devices.values() if d.available)
        mqtt_ok = self.link.connected.is_set()
        detail: dict[str, object] = {
            "status": "ok" if mqtt_ok else "mqtt_disconnected",
            "mqtt_connected": mqtt_ok,
            "devices": len(self.devices),
            "devices_online": online,
            "devices_offline": sorted(d.id for d in self.devices.values() if d.available is False),
        }
        return mqtt_ok, detail

    async def _health_loop(self) -> None:
        last: dict[str, float] = {}
        while True:
            await asyncio.sleep(self.settings.health_period_s)
            if not self._started:  # still checking ownership: nothing to report, nothing announced
                continue
            depth = 0
            for name, hub in self.hubs.items():
                self.metrics.queue_depth.labels(name).set(hub.queue_depth)
                depth = max(depth, hub.queue_depth)
            _, detail = self.health_status()
            totals = self.metrics.totals()
            polls = totals.get("poll_latency_seconds_count", 0.0) - last.get(
                "poll_latency_seconds_count", 0.0
            )
            spent = totals.get("poll_latency_seconds_sum", 0.0) - last.get("poll_latency_seconds_sum", 0.0)
            last = totals
            body = {
                **detail,
                "commands": self.commands_seen,
                "polls_per_s": round(polls / self.settings.health_period_s, 2),
                "poll_latency_ms_mean": round(1000 * spent / polls, 3) if polls else None,
                "request_errors_total": totals.get("request_errors_total", 0.0),
                "missed_deadlines_total": totals.get("missed_deadlines_total", 0.0),
                "max_queue_depth": depth,
                **{k: v for k, v in totals.items() if k.startswith("commands_")},
                **({"telemetry_pending": self.telemetry.pending} if self.telemetry is not None else {}),
                "states_waiting": self.outbox.waiting,
                "ts": time.time(),
            }
            await self.link.publish(
                self.topics.bridge_health(self.gateway_id), orjson.dumps(body), retain=True
            )

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Run until ``stop`` is set or the task is cancelled; then say ``offline`` and close the buses.

        Raises FleetConflict (nothing polled, nothing announced) when a live gateway owns our devices.
        """
        log.info("gateway_starting", site=self.site_id, gateway=self.gateway_id, devices=len(self.devices))
        stop = stop or asyncio.Event()
        if self.settings.metrics_port is not None:
            port = await self.health.start(self.settings.metrics_host, self.settings.metrics_port)
            log.info("health_endpoint", url=f"http://{self.settings.metrics_host}:{port}/metrics")
        refused: FleetConflict | None = None
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                link_task = tg.create_task(self.link.run(), name="mqtt")
                health_task = tg.create_task(self._health_loop(), name="health")
                bulk_task = (
                    tg.create_task(self.telemetry.run(), name="bulk-telemetry") if self.telemetry else None
                )
                lease_task = tg.create_task(self._lease_loop(), name="lease") if self.lease else None
                try:
                    await first_set(stop, self._lost)
                finally:
                    health_task.cancel()
                    if lease_task is not None:
                        lease_task.cancel()
                    for dev in self.devices.values():
                        dev.stop()
                    if bulk_task is not None and self.telemetry is not None:
                        bulk_task.cancel()
                        with contextlib.suppress(Exception):
                            async with asyncio.timeout(1.0):
                                await self.telemetry.flush()  # what the last polls read
                    with contextlib.suppress(Exception):
                        async with asyncio.timeout(1.0):
                            await self._say_goodbye()
                    await self.link.shutdown(link_task)
        except* FleetConflict as group:
            refused = FleetConflict.first(group)
        finally:
            self._tg = None
            await self.health.close()
            for hub in self.hubs.values():
                await hub.close()
            if self.telemetry is not None:
                self.telemetry.close()  # what the broker has not acknowledged waits in the spool file
            log.info("gateway_stopped")
        if refused is not None:
            raise refused
        if self._lost.is_set():
            raise LeaseLost(f"gateway {self.gateway_id!r} instance {self.instance!r} lost its lease")

    async def _say_goodbye(self) -> None:
        """A clean stop: free the lease (a standby takes over at once) and say offline, when it is ours
        to say; a standby or a process that lost its lease says nothing (the active one is online)."""
        if self.lease is None:
            await self.link.close()
            return
        release = self.lease.release() if self.may_act() else None
        if release is not None:
            await self._publish(self.topics.bridge_lease(self.gateway_id), release.payload(), True)
            await self.link.close()


async def first_set(*events: asyncio.Event) -> None:
    """Wait until one of ``events`` is set."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
