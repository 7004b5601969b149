"""One device on a bus: its poll loops, its breaker and availability, its state, and its commands.

State published is always what the device reported (a poll or the read-back after a write), never a
requested value. A device that fails ``offline_after_failures`` times in a row goes offline and its
breaker opens: it is then probed with capped exponential backoff so it costs its neighbours nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import structlog

from bcc_common.timefmt import iso_ms
from bcc_contract.commands import CommandStatus
from bcc_contract.topics import OFFLINE, ONLINE, Topics
from devices.codec import OFF, ON, bool_text, decode_registers
from devices.models import DeviceProfile, Point
from devices.site import DeviceInstance, GatewaySettings
from iot_gateway.commands import Command
from iot_gateway.errors import BusDisconnected, BusError, DeviceException
from iot_gateway.hub import PRIORITY_COMMAND, PRIORITY_POLL, BusHub
from iot_gateway.metrics import GatewayMetrics
from iot_gateway.planner import ReadBlock, plan_reads

log = structlog.get_logger(__name__)

# Retained device topics (state, availability) go through iot_gateway.outbox: handed over, never awaited.
Post = Callable[[str, bytes, bool], None]  # topic, payload, at once (past the window)


def decode_block(block: ReadBlock, raw: Sequence[int]) -> dict[str, Any]:
    if len(raw) == block.count:  # decoders precomputed per block (devices.codec.block_decoder)
        if block.plain_keys is not None:  # one plain uint16 point per register: the values themselves
            return dict(zip(block.plain_keys, raw, strict=True))
        return {key: decode(raw) for key, decode in block.decoders}
    out: dict[str, Any] = {}  # a short answer: decode_registers names the point it cannot fill
    if block.table.is_bit:
        for key, offset, _, _ in block.layout:
            out[key] = ON if raw[offset] else OFF
        return out
    for key, offset, count, point in block.layout:
        value = decode_registers(point, raw[offset : offset + count])
        out[key] = bool_text(value) if isinstance(value, bool) else value
    return out


UNPUBLISHED = object()  # a point no state has carried yet (``None`` is a value: "no valid value")


def changed(numeric: bool, deadband: float, old: Any, new: Any) -> bool:
    """Whether a point's value moved past its deadband (its settings looked up once: ``_rules``).
    ``old`` is ``UNPUBLISHED`` for a point no state carried yet. ``None`` (the device reported NaN/Inf)
    against a number is a change; ``None`` against ``None`` is not."""
    if old is UNPUBLISHED:
        return True
    if numeric and isinstance(old, int | float) and isinstance(new, int | float):
        return abs(new - old) > deadband if deadband else new != old
    return bool(old != new)


def same_value(point: Point, requested: Any, reported: Any) -> bool:
    """Read-back comparison: numbers match within half a step of the register's resolution."""
    if point.is_numeric and isinstance(requested, int | float) and isinstance(reported, int | float):
        tolerance = abs(point.scale) / 2 if not point.type.is_float else 1e-6 * max(1.0, abs(requested))
        return abs(requested - reported) <= tolerance
    return bool(requested == reported)


def _reported(value: Any) -> str:
    return "no valid value (NaN/Inf)" if value is None else repr(value)


class DeviceRunner:
    def __init__(
        self,
        instance: DeviceInstance,
        profile: DeviceProfile,
        hub: BusHub,
        settings: GatewaySettings,
        topics: Topics,
        post: Post,
        metrics: GatewayMetrics,
        telemetry: Callable[[str, bytes], None] | None = None,
        may_act: Callable[[], bool] = lambda: True,
    ) -> None:
        self.instance = instance
        # The fence of an active/standby gateway (iot_gateway.failover): checked before every poll and
        # every write, so a process whose lease ran out neither reads nor writes the device.
        self.may_act = may_act
        self._telemetry = telemetry  # bulk telemetry (iot_gateway.bulk), when the site enables it
        self.id = instance.id
        self.profile = profile
        self.hub = hub
        self.settings = settings
        self.topics = topics
        self._post = post
        self.metrics = metrics
        self.values: dict[str, Any] = {}
        self.value_ts = 0.0
        self._published: dict[str, Any] = {}
        self._last_publish = 0.0
        self.available: bool | None = None
        self.failures = 0
        self.polls_ok = 0
        self._breaker_until = 0.0
        self._breaker_shown: int | None = None  # what the breaker_open gauge says for this device
        self._backoff_s = 0.0
        self.groups: dict[str, tuple[float, list[ReadBlock]]] = {}
        for name, group in profile.poll_groups.items():
            pts = [p for p in profile.points if p.group == name]
            if pts:
                interval = instance.poll_s.get(name, group.interval_s)
                self.groups[name] = (interval, plan_reads(profile, pts))
        self._rules = {p.key: (p.is_numeric, p.deadband) for p in profile.points}
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # --- breaker --------------------------------------------------------------------------
    @property
    def breaker_open(self) -> bool:
        return self.failures >= self.settings.offline_after_failures

    def _may_poll(self, now: float) -> bool:
        return not self.breaker_open or now >= self._breaker_until

    def _record_success(self) -> None:
        if self.breaker_open:
            log.info("device_recovered", device=self.id, after_failures=self.failures)
        self.failures = 0
        self._backoff_s = 0.0
        if self._breaker_shown != 0:  # the gauge's label lookup is not free at 1,500 polls/s
            self.metrics.breaker_open.labels(self.id).set(0)
            self._breaker_shown = 0
        if self.available is not True:
            self.available = True
            self._post(self.topics.availability(self.id), ONLINE.encode(), False)

    def _record_failure(self, err: Exception, interval: float) -> None:
        self.failures += 1
        kind = type(err).__name__
        self.metrics.request_errors.labels(self.id, kind).inc()
        if self.failures < self.settings.offline_after_failures:
            return
        loop_now = asyncio.get_running_loop().time()
        base = max(interval, 0.5)
        self._backoff_s = min(self.settings.breaker_max_backoff_s, (self._backoff_s * 2) or base)
        self._breaker_until = loop_now + self._backoff_s * random.uniform(0.8, 1.0)
        self.metrics.breaker_open.labels(self.id).set(1)
        self._breaker_shown = 1
        if self.available is not False:
            log.warning("device_offline", device=self.id, failures=self.failures, error=str(err))
            self.available = False
            self._post(self.topics.availability(self.id), OFFLINE.encode(), False)

    # --- polling --------------------------------------------------------------------------
    async def read_blocks(self, blocks: Sequence[ReadBlock], priority: int) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for block in blocks:
            raw = await self.hub.read(block.table, block.start, block.count, self.instance.unit, priority)
            values.update(decode_block(block, raw))
        return values

    async def poll_once(self, group: str) -> bool:
        interval, blocks = self.groups[group]
        loop = asyncio.get_running_loop()
        if not self._may_poll(loop.time()) or not self.may_act():
            return False
        started = loop.time()
        try:
            values = await self.read_blocks(blocks, PRIORITY_POLL)
        except BusError as err:  # the hub hands over exactly the values asked for, or BadAnswer
            self._record_failure(err, interval)
            return False
        self.metrics.poll_latency.observe(loop.time() - started)
        self.polls_ok += 1
        self._record_success()
        self.update(values, time.time())
        return True

    async def run_group(self, group: str, offset_s: float) -> None:
        """Poll one group at its interval, starting ``offset_s`` into the first period."""
        interval, _ = self.groups[group]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + offset_s
        while not self._stop.is_set():
            delay = deadline - loop.time()
            if delay > 0:
                # Wait on the stop event rather than sleep: stop() ends the loop at once. (Python 3.11's
                # asyncio.wait_for, used inside pymodbus, can swallow a task cancellation.)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._stop.wait()
                if self._stop.is_set():
                    return
            self.metrics.poll_jitter.observe(max(0.0, loop.time() - deadline))
            try:
                await self.poll_once(group)
            except Exception as err:  # a bug must end neither this device's polls nor the gateway's TaskGroup
                log.exception("poll_failed", device=self.id, group=group)
                self._record_failure(err, interval)
            deadline += interval
            now = loop.time()
            if now > deadline:  # overran: skip the missed slots rather than bursting to catch up
                missed = int((now - deadline) // interval) + 1
                self.metrics.missed_deadlines.labels(self.id).inc(missed)
                deadline += missed * interval

    def stop(self) -> None:
        """End the poll loops (they also get cancelled; the event covers a swallowed cancellation)."""
        self._stop.set()
        for task in self._tasks:
            task.cancel()

    def start(self, tg: asyncio.TaskGroup) -> list[asyncio.Task[None]]:
        tasks = []
        for group, (interval, _) in self.groups.items():
            # Spread devices over the interval by a stable hash: no thundering herd on start.
            offset = (zlib.crc32(f"{self.id}/{group}".encode()) % 1000) / 1000 * interval
            tasks.append(tg.create_task(self.run_group(group, offset), name=f"poll:{self.id}:{group}"))
        self._tasks = tasks
        return tasks

    # --- publishing -----------------------------------------------------------------------
    def update(self, values: dict[str, Any], ts: float, at_once: bool = False) -> None:
        """Merge device-reported values; publish when a point moved past its deadband or on heartbeat.
        The state is handed to the outbox: the caller (a poll, a command's read-back) never waits for
        the broker. ``at_once``: a command's read-back, whose state must precede its response."""
        self.values.update(values)
        self.value_ts = ts
        due = ts - self._last_publish >= self.settings.heartbeat_s
        if due:
            self.publish_state(at_once)
            return
        rules, published = self._rules, self._published
        for k, v in values.items():
            numeric, deadband = rules[k]
            if changed(numeric, deadband, published.get(k, UNPUBLISHED), v):
                self.publish_state(at_once)
                return

    def state_payload(self) -> bytes:
        body = dict(self.values)
        body["ts"] = iso_ms(self.value_ts)
        return orjson.dumps(body)

    def publish_state(self, at_once: bool = False) -> None:
        if not self.values:
            return
        self._published = dict(self.values)
        self._last_publish = self.value_ts
        payload = self.state_payload()
        self._post(self.topics.state(self.id), payload, at_once)
        if self._telemetry is not None:
            self._telemetry(self.id, payload)

    def republish(self, since: float) -> None:
        """After a broker (re)connect at ``since`` (epoch s): retained availability and the last known
        state again, unless this connection already carries that state (polled since: sent, or waiting
        in the outbox for it). Without that check every device that polled between the connect and the
        gateway's announcement published the same state twice (1,131 repeats at 1,500 devices)."""
        if self.available is not None:
            self._post(
                self.topics.availability(self.id), (ONLINE if self.available else OFFLINE).encode(), False
            )
        if self.values and self._last_publish < since:
            self.publish_state()

    # --- commands -------------------------------------------------------------------------
    async def execute(self, cmd: Command) -> tuple[CommandStatus, str | None, dict[str, Any] | None]:
        """Write, then read back every written point. Returns (status, error, read-back state)."""
        if self.breaker_open or self.available is False:
            return CommandStatus.DEVICE_UNAVAILABLE, "device is offline", None
        unit = self.instance.unit
        try:
            for w in cmd.writes:
                if not self.may_act():
                    return CommandStatus.DEVICE_UNAVAILABLE, "not the active gateway (lease lost)", None
                if w.coil is not None:
                    await self.hub.write_coil(w.point.address, w.coil, unit)
                else:
                    await self.hub.write_registers(w.point.address, w.registers, unit)
            if self.settings.readback_delay_ms:
                await asyncio.sleep(self.settings.readback_delay_ms / 1000)
            blocks = plan_reads(self.profile, [w.point for w in cmd.writes], max_gap=0)
            readback = await self.read_blocks(blocks, PRIORITY_COMMAND)
        except DeviceException as err:
            return CommandStatus.REJECTED, f"device refused: {err}", None
        except BusDisconnected as err:
            return CommandStatus.DEVICE_UNAVAILABLE, str(err), None
        except BusError as err:
            return CommandStatus.TIMEOUT, str(err), None
        self.update(readback, time.time(), at_once=True)  # state before response (a NaN: null)
        wrong = [
            f"{w.point.key}: requested {w.value!r}, device reports {_reported(readback[w.point.key])}"
            for w in cmd.writes
            if not same_value(w.point, w.value, readback[w.point.key])
        ]
        if wrong:
            return CommandStatus.FAILED_READBACK, "; ".join(wrong), readback
        return CommandStatus.OK, None, readback
