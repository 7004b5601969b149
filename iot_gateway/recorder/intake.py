"""MQTT side of the recorder: a persistent QoS 1 session whose messages are acknowledged only after
their lines are committed to the spool (paho's manual acknowledgement), so neither a killed recorder
nor a broker restart loses a message: unacknowledged ones are re-sent by the broker.

aiomqtt 2.5.1 has no ``manual_ack`` argument; we switch it on in the paho client it wraps (pinned
version) and drain its queue without a task per message, which matters at 10k+ messages/s.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import aiomqtt
import orjson
import structlog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bcc_common.timefmt import iso_ms
from bcc_contract.topics import Topics
from iot_gateway.lifecycle import mqtt_connected
from iot_gateway.mqtt import PUBLISH_TIMEOUT_S, client_kwargs
from iot_gateway.recorder.config import RecorderConfig
from iot_gateway.recorder.lineproto import ts_to_ns
from iot_gateway.recorder.metrics import RecorderMetrics
from iot_gateway.recorder.schema import Schema
from iot_gateway.recorder.spool import Spool

log = structlog.get_logger(__name__)
MAX_BATCH_MESSAGES = 1000


def topic_filters(
    topics: Topics, gateway: str, shared_group: str | None = None, bulk: bool = False
) -> list[str]:
    """Everything the recorder reads (the ``recorder`` role of mosquitto/acl): its site's gateway's
    bridge topics (``gateway``, the site's gateway id). With ``bulk`` (the site's
    ``gateway.telemetry_batch_ms``) device states come from the bulk topic, not one topic per device."""
    filters = [
        topics.bridge_telemetry(gateway) if bulk else topics.all_state,
        topics.all_availability,
        topics.all_response,
        topics.bridge_state(gateway),
        topics.bridge_health(gateway),
        topics.report_events,
        topics.report_backlog,
        topics.alarm_events,
    ]
    return [topics.shared(shared_group, f) for f in filters] if shared_group else filters


class Intake:
    def __init__(
        self,
        config: RecorderConfig,
        schema: Schema,
        spool: Spool,
        metrics: RecorderMetrics,
        on_spooled: Callable[[], None],
    ) -> None:
        self.config = config
        self.schema = schema
        self.spool = spool
        self.metrics = metrics
        self.on_spooled = on_spooled
        bulk = config.loaded.site.gateway.telemetry_batch_ms is not None
        self.filters = topic_filters(schema.topics, schema.gateway, config.influx.shared_group, bulk)
        self.connected = asyncio.Event()
        self.session_present = False
        self._seen: dict[str, bytes] = {}
        self.received_points = 0
        self.messages = 0
        # Status on MQTT (docs/influxdb.md): retained, the last will says offline.
        self.status_topic = schema.topics.recorder_status(config.client_id)
        self.influxdb = "unknown"
        self.status_changed = asyncio.Event()
        self._client: aiomqtt.Client | None = None

    def _make_client(self) -> aiomqtt.Client:
        kwargs: dict[str, Any] = client_kwargs(
            self.config.mqtt, self.config.client_id, self.config.mqtt_password
        )
        if self.config.mqtt.protocol == "5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self.config.influx.session_expiry_s
            if self.config.influx.receive_maximum is not None:
                props.ReceiveMaximum = self.config.influx.receive_maximum
            kwargs.update(clean_start=False, properties=props)
        else:
            kwargs["clean_session"] = False
        will = orjson.dumps({"state": "offline", "influxdb": "unknown"})
        client = aiomqtt.Client(will=aiomqtt.Will(self.status_topic, will, qos=1, retain=True), **kwargs)
        paho = client._client
        paho.manual_ack_set(True)
        original: Any = paho.on_connect

        def on_connect(c: Any, userdata: Any, flags: Any, reason: Any, properties: Any = None) -> None:
            self.session_present = bool(getattr(flags, "session_present", False))
            original(c, userdata, flags, reason, properties)

        paho.on_connect = on_connect
        return client

    async def run(self) -> None:
        """Connect forever with capped, jittered exponential backoff."""
        failures = 0
        settings = self.config.mqtt
        while True:
            try:
                async with mqtt_connected(self._make_client()) as client:
                    failures = 0
                    self.metrics.mqtt_connects.inc()
                    if not self.session_present:
                        # New session (first start, or the broker lost it): subscribe. With a session the
                        # broker kept our subscriptions and queued what arrived while we were away.
                        await self._subscribe(client)
                    log.info("recorder_mqtt_connected", session_present=self.session_present)
                    self._client = client
                    self.status_changed.set()
                    self.connected.set()
                    await self._consume(client)
            except aiomqtt.MqttError as err:
                failures += 1
                if failures == 1:
                    log.warning("recorder_mqtt_disconnected", error=str(err))
            finally:
                self._client = None
                self.connected.clear()
            delay = min(settings.reconnect_max_s, settings.reconnect_min_s * 2 ** min(failures, 16))
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    def set_influxdb(self, reachable: bool) -> None:
        """What the last write (or schema check) said about InfluxDB; a change is published."""
        value = "reachable" if reachable else "unreachable"
        if value != self.influxdb:
            self.influxdb = value
            self.status_changed.set()

    async def say(self, state: str) -> None:
        """Publish this recorder's status now (nothing while the broker is away: the will covers it)."""
        client = self._client
        if client is None:
            return
        body = {
            "state": state,
            "influxdb": self.influxdb if state == "online" else "unknown",
            "spool_depth": self.spool.depth,
            "ts": iso_ms(time.time()),
        }
        with contextlib.suppress(aiomqtt.MqttError):
            await client.publish(
                self.status_topic, orjson.dumps(body), qos=1, retain=True, timeout=PUBLISH_TIMEOUT_S
            )

    async def status_loop(self) -> None:
        """Online at every connect, and again whenever InfluxDB's reachability changes."""
        while True:
            await self.status_changed.wait()
            self.status_changed.clear()
            await self.say("online")

    async def _subscribe(self, client: aiomqtt.Client) -> None:
        """One SUBSCRIBE per filter; on MQTT 3.1.1 one for all of them: amqtt 0.12.1 (the demo's 3.1.1-only
        fallback broker) reads this client's next packet only once the retained messages of the last
        filter are acknowledged, and we acknowledge only after subscribing, while consuming."""
        if self.config.mqtt.protocol == "3.1.1":
            await client.subscribe([(f, 1) for f in self.filters])
            return
        for f in self.filters:
            await client.subscribe(f, qos=1)

    async def _consume(self, client: aiomqtt.Client) -> None:
        queue = client._queue
        iterator = client.messages
        while True:
            batch = [await anext(iterator)]
            while queue.qsize() and len(batch) < MAX_BATCH_MESSAGES:
                batch.append(queue.get_nowait())
            await self.store_durably(batch)
            paho = client._client
            for msg in batch:  # only now: the lines are durable
                paho.ack(msg.mid, msg.qos)
            self.on_spooled()

    def _seen_payload(self, topic: str) -> bytes | None:
        if topic not in self._seen:
            last = self.spool.seen(topic)
            if last is None:
                return None
            self._seen[topic] = last
        return self._seen[topic]

    async def store_durably(self, messages: list[aiomqtt.Message]) -> None:
        """Store a batch, retrying while the spool cannot be written (disk full, I/O error).

        Meanwhile the batch is not acknowledged, so the broker keeps it and, once the in-flight window
        is full, queues what follows for this persistent session (up to its ``max_queued_messages``):
        nothing is lost while the disk is full unless the broker's queue overflows. The writer keeps
        draining the spool into InfluxDB, which frees space; the error is logged once and counted in
        ``bcc_recorder_spool_errors_total``; ``bcc_recorder_spool_ok`` is 0 until a commit succeeds.
        """
        delay = self.config.influx.backoff_min_s
        failing = False
        while True:
            try:
                self.store(messages)
            except sqlite3.Error as err:
                self.metrics.spool_errors.inc()
                self.metrics.spool_ok.set(0)
                if not failing:
                    log.error(
                        "spool_write_failed",
                        error=str(err),
                        spool=str(self.spool.path),
                        messages_held=len(messages),
                        note="messages stay unacknowledged at the broker; retrying",
                    )
                failing = True
                self.spool.checkpoint()  # a WAL truncated back to 0 may be all the room needed
                self.on_spooled()  # let the writer drain (and free space) meanwhile
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(self.config.influx.backoff_max_s, delay * 2)
                continue
            if failing:
                log.info("spool_write_recovered", spool=str(self.spool.path))
            self.metrics.spool_ok.set(1)
            return

    def store(self, messages: list[aiomqtt.Message]) -> None:
        """Convert and commit one batch of messages in one transaction.

        No state changes before the commit succeeded, so a failed commit can be retried with the same batch.
        """
        rows: list[tuple[int, str, bytes]] = []
        dead: list[tuple[str, int, bytes]] = []
        seen: dict[str, bytes] = {}
        backlog: bytes | None = None
        now_ns = time.time_ns()
        for msg in messages:
            topic = str(msg.topic)
            payload = bytes(msg.payload) if isinstance(msg.payload, bytes | bytearray) else b""
            record = self.schema.convert(topic, payload, now_ns)
            if record.dedupe_topic is not None:
                key = record.dedupe_topic
                last = seen[key] if key in seen else self._seen_payload(key)
                if last == payload:
                    continue  # availability unchanged (a retained copy after a reconnect)
                seen[key] = payload
            if record.problem is not None:
                dead.append((record.problem, 0, topic.encode() + b"\n" + payload))
            elif topic == self.schema.topics.report_backlog:
                backlog = payload  # the last one of the batch is the portal's current backlog
            for text, n in record.lines:
                rows.append((n, record.rp, text.encode()))
        points = sum(r[0] for r in rows)
        dropped = self.spool.append(rows, dead, seen.items())
        self._seen.update(seen)
        self.messages += len(messages)
        self.received_points += points
        self.metrics.messages.inc(len(messages))
        self.metrics.dead_messages.inc(len(dead))
        self.metrics.received.inc(points)
        self.metrics.spooled.inc(points)
        if dropped:
            self.metrics.dropped.inc(dropped)
            log.warning("spool_full_dropped_oldest", points=dropped, max_points=self.spool.max_points)
        self.metrics.spool_depth.set(self.spool.depth)
        if backlog is not None:
            self._observe_backlog(backlog)

    def _observe_backlog(self, payload: bytes) -> None:
        """The portal's overdue counts as gauges (alert BccReportsOverdue); the payload converted
        without a problem, so its fields are there and typed (schema.Schema._backlog)."""
        body = orjson.loads(payload)
        self.metrics.reports_overdue.labels("verification").set(int(body.get("overdue_verification", 0)))
        self.metrics.reports_overdue.labels("response").set(int(body.get("overdue_response", 0)))
        self.metrics.backlog_time.set(ts_to_ns(body["ts"]) / 1e9)
