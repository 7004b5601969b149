"""The gateway service: hubs, device runners and the MQTT link, wired together in one TaskGroup."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from typing import Any

import aiomqtt
import orjson
import structlog

from iot_gateway.commands import (
    CommandRejected,
    Status,
    TransactionLog,
    parse_command,
    response_payload,
)
from iot_gateway.config import GatewayConfig
from iot_gateway.device import DeviceRunner
from iot_gateway.hub import BusHub
from iot_gateway.metrics import GatewayMetrics
from iot_gateway.mqtt import MqttLink
from iot_gateway.topics import ONLINE, Topics

log = structlog.get_logger(__name__)

HEALTH_PERIOD_S = 10.0


class Gateway:
    def __init__(self, config: GatewayConfig, client_id: str | None = None) -> None:
        self.config = config
        site = config.loaded.site
        self.settings = site.gateway
        self.topics = Topics(config.mqtt.base_topic, config.mqtt.discovery_prefix)
        self.metrics = GatewayMetrics()
        self.hubs = {b.name: BusHub(b) for b in site.buses}
        self.devices: dict[str, DeviceRunner] = {}
        for inst in site.devices:
            self.devices[inst.id] = DeviceRunner(
                inst,
                config.loaded.profile_of(inst),
                self.hubs[inst.bus],
                self.settings,
                self.topics,
                self._publish,
                self.metrics,
            )
        cid = (
            client_id
            or config.mqtt.client_id
            or f"bcc-{self.settings.name}-{socket.gethostname()}-{os.getpid()}"
        )
        self.link = MqttLink(
            config.mqtt, self.topics, cid, config.password, self._on_connect, self._on_message, self.metrics
        )
        self.transactions = TransactionLog(self.settings.transaction_memory)
        self.commands_seen = 0

    async def _publish(self, topic: str, payload: bytes, retain: bool) -> None:
        await self.link.publish(topic, payload, retain=retain)

    async def _on_connect(self, link: MqttLink) -> None:
        await link.publish(self.topics.bridge_state, ONLINE, retain=True)
        await link.subscribe(self.topics.all_set)
        for dev in self.devices.values():
            await dev.republish()

    async def _on_message(self, message: aiomqtt.Message) -> None:
        try:
            await self.handle_command(str(message.topic), bytes(message.payload or b""), message.retain)
        except Exception:  # one bad message must never stop the gateway
            log.exception("command_handler_failed", topic=str(message.topic))

    async def _respond(self, device: str, payload: bytes, status: Status) -> None:
        self.metrics.commands.labels(status.value).inc()
        await self.link.publish(self.topics.response(device), payload, retain=False)

    async def handle_command(self, topic: str, payload: bytes, retained: bool) -> None:
        device_id = self.topics.device_of_set(topic)
        if device_id is None:
            return
        if retained:
            # A retained command would re-fire on every restart: never act on one.
            self.metrics.retained_commands_ignored.inc()
            log.warning("retained_command_ignored", device=device_id)
            return
        self.commands_seen += 1
        runner = self.devices.get(device_id)
        if runner is None:
            body = response_payload(device_id, None, Status.REJECTED, f"unknown device {device_id!r}")
            await self._respond(device_id, body, Status.REJECTED)
            return
        try:
            cmd = parse_command(
                device_id,
                runner.profile,
                payload,
                max_bytes=self.settings.max_payload_bytes,
                now=time.time(),
                ttl_s=self.settings.command_ttl_s,
            )
        except CommandRejected as err:
            log.info("command_refused", device=device_id, status=err.status.value, error=str(err))
            await self._respond(
                device_id, response_payload(device_id, err.transaction, err.status, str(err)), err.status
            )
            return
        future: asyncio.Future[bytes] | None = None
        if cmd.transaction is not None:
            first, future = self.transactions.claim(device_id, cmd.transaction)
            if not first:
                body = await asyncio.shield(future)
                await self._respond(device_id, body, Status(orjson.loads(body)["status"]))
                return
        status, error, state = await self._execute(runner, cmd)
        body = response_payload(device_id, cmd.transaction, status, error, state)
        if future is not None and not future.done():
            future.set_result(body)
        log.info(
            "command_done", device=device_id, transaction=cmd.transaction, status=status.value, error=error
        )
        await self._respond(device_id, body, status)

    async def _execute(
        self, runner: DeviceRunner, cmd: Any
    ) -> tuple[Status, str | None, dict[str, Any] | None]:
        try:
            async with asyncio.timeout(self.settings.command_deadline_ms / 1000):
                return await runner.execute(cmd)
        except TimeoutError:
            return Status.TIMEOUT, f"no confirmation within {self.settings.command_deadline_ms} ms", None

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(HEALTH_PERIOD_S)
            for name, hub in self.hubs.items():
                self.metrics.queue_depth.labels(name).set(hub.queue_depth)
            body = {
                "devices": len(self.devices),
                "online": sum(1 for d in self.devices.values() if d.available),
                "commands": self.commands_seen,
                "ts": time.time(),
            }
            await self.link.publish(self.topics.bridge_health, orjson.dumps(body), retain=True)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Run until ``stop`` is set or the task is cancelled; then say ``offline`` and close the buses."""
        log.info("gateway_starting", site=self.config.loaded.site.site, devices=len(self.devices))
        stop = stop or asyncio.Event()
        try:
            async with asyncio.TaskGroup() as tg:
                link_task = tg.create_task(self.link.run(), name="mqtt")
                workers = [tg.create_task(self._health_loop(), name="health")]
                for dev in self.devices.values():
                    workers += dev.start(tg)
                try:
                    await stop.wait()
                finally:
                    for task in workers:
                        task.cancel()
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(self.link.close(), 1.0)
                    link_task.cancel()
        finally:
            for hub in self.hubs.values():
                await hub.close()
            log.info("gateway_stopped")
