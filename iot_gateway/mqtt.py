"""The gateway's MQTT connection: one long-lived task that connects, reconnects and dispatches.

The session is clean on every connect, so no command queued while the gateway was away is replayed
into a device (no ghost switching after a restart). ``offline`` on the gateway's own
``bridge/<gateway>/state`` is the last will.

Incoming messages are bounded (docs/mqtt.md, "Incoming messages"): at most ``incoming_handlers`` run at
once, and at most ``incoming_queue`` wait for one (twice that for commands to the gateway's own devices);
beyond that messages are dropped and counted (iot_gateway.inflow says why not back-pressure).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import socket
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import aiomqtt
import structlog
from paho.mqtt.client import DISCONNECT, MQTT_ERR_SUCCESS, PUBLISH
from paho.mqtt.client import error_string as mqtt_error_string
from paho.mqtt.client import time_func as paho_time
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from bcc_common.process import cancel_and_wait
from bcc_contract.topics import OFFLINE
from devices.site import MqttSettings
from iot_gateway.inflow import bound_incoming
from iot_gateway.lifecycle import mqtt_connected
from iot_gateway.metrics import GatewayMetrics

log = structlog.get_logger(__name__)

OnConnect = Callable[["MqttLink"], Awaitable[None]]
OnMessage = Callable[[aiomqtt.Message], Coroutine[Any, Any, None]]
Wanted = Callable[[str], bool]
PUBLISH_TIMEOUT_S = 5.0
# QoS 1 publishes in flight at once (paho's default is 20), within the broker's Receive Maximum (MQTT 5
# CONNACK; our mosquitto.conf's max_inflight_messages says 100). With 20, one PUBACK round trip per
# 20 states capped the gateway below 1,500 states/s on a loaded machine, and every poll waited in
# paho's queue for its turn.
PUBLISH_WINDOW = 100
ACK_SWEEP_S = 0.25  # a publish without PUBACK fails after PUBLISH_TIMEOUT_S + at most this


def client_kwargs(settings: MqttSettings, client_id: str, password: str | None) -> dict[str, object]:
    """Arguments for ``aiomqtt.Client`` from the site's MQTT settings (shared with tools and tests)."""
    v5 = settings.protocol == "5"
    kwargs: dict[str, object] = {
        "hostname": settings.host,
        "port": settings.port,
        "identifier": client_id,
        "username": settings.username,
        "password": password,
        "keepalive": settings.keepalive_s,
        "protocol": aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
        # paho leaves Nagle on: a QoS 1 publish then waits ~40 ms for delayed ACKs on loopback.
        "socket_options": [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
    }
    if v5:
        kwargs["clean_start"] = True
    else:
        kwargs["clean_session"] = True
    if settings.uses_tls:
        tls = settings.tls
        kwargs["tls_params"] = aiomqtt.TLSParameters(
            ca_certs=tls.ca_file if tls else None,
            certfile=tls.cert_file if tls else None,
            keyfile=tls.key_file if tls else None,
        )
        if tls and tls.insecure:
            kwargs["tls_insecure"] = True
    return kwargs


def window_from_connack(client: aiomqtt.Client, window: int) -> None:
    """Let up to ``window`` QoS 1 publishes be in flight, fewer if the broker's CONNACK says so
    (Receive Maximum; absent means 65,535). paho ignores that property, so this reads it before
    aiomqtt sees the CONNACK, i.e. before the first publish of the connection."""
    paho = client._client  # the paho client aiomqtt wraps (pinned version), as bound_incoming uses it
    inner: Any = paho.on_connect

    def on_connect(c: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        receive_maximum = getattr(properties, "ReceiveMaximum", None) or 65_535
        c._max_inflight_messages = min(window, receive_maximum)  # the setter refuses once connected
        inner(c, userdata, flags, reason_code, properties)

    paho.on_connect = on_connect


def coalesce_writes(paho: Any) -> None:
    """Send everything in paho's queue with one ``send()`` per writable event, not one per packet.

    paho (pinned) writes its queued packets one by one; with the outbox sending device states in
    batches (iot_gateway.outbox.STATE_BATCH_S) a batch then costs one system call instead of one per
    state. Only packets paho needs nothing more for once written are joined: QoS 1 publishes, acks,
    subscribes, pings. A QoS 0 publish (paho calls ``on_publish`` and marks it published) or a
    DISCONNECT in the queue leaves the write to paho's own method. A partial send leaves the first
    unfinished packet at the head of the queue with its position, as paho does.
    """
    own_write = paho._packet_write
    out = paho._out_packet

    def packet_write() -> MQTTErrorCode:
        if len(out) < 2 or any(
            (p["command"] & 0xF0) == DISCONNECT or ((p["command"] & 0xF0) == PUBLISH and p["qos"] == 0)
            for p in out
        ):
            return own_write()  # type: ignore[no-any-return]
        data = b"".join(memoryview(p["packet"])[p["pos"] :] for p in out)
        try:
            sent = paho._sock_send(data)
        except (AttributeError, ValueError):  # no socket (any more): as paho's own write
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        except BlockingIOError:
            return MQTTErrorCode.MQTT_ERR_AGAIN
        except OSError:
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        while sent > 0:
            head = out[0]
            step = min(sent, head["to_process"])
            head["pos"] += step
            head["to_process"] -= step
            sent -= step
            if head["to_process"] == 0:
                out.popleft()
        with paho._msgtime_mutex:
            paho._last_msg_out = paho_time()
        return MQTTErrorCode.MQTT_ERR_AGAIN if out else MQTTErrorCode.MQTT_ERR_SUCCESS

    paho._packet_write = packet_write


class _Ack:
    """Stands in for the ``asyncio.Event`` aiomqtt keeps per pending publish: its PUBACK callback
    pops the message id from the client's pending table and calls ``set()``. The future says whether
    the broker acknowledged; ``fail()`` (overdue, or the connection is gone) also takes the entry out
    of the pending table, so nobody has to wait for the future to clean up."""

    __slots__ = ("future", "mid", "pending")

    def __init__(self, future: asyncio.Future[bool], pending: dict[int, Any], mid: int) -> None:
        self.future = future
        self.pending = pending
        self.mid = mid

    def set(self) -> None:
        if not self.future.done():
            self.future.set_result(True)

    def fail(self) -> None:
        if self.pending.get(self.mid) is self:
            del self.pending[self.mid]
        if not self.future.done():
            self.future.set_result(False)


class MqttLink:
    def __init__(
        self,
        settings: MqttSettings,
        state_topic: str,
        client_id: str,
        password: str | None,
        on_connect: OnConnect,
        on_message: OnMessage,
        metrics: GatewayMetrics,
        wanted: Wanted = lambda topic: True,
    ) -> None:
        self.settings = settings
        self.state_topic = state_topic  # the gateway's own bridge state: online, offline (last will)
        self.client_id = client_id
        self._password = password
        self._on_connect = on_connect
        self._on_message = on_message
        self._metrics = metrics
        self._wanted = wanted  # topics kept longer when incoming messages overflow
        self._client: aiomqtt.Client | None = None
        self.connected = asyncio.Event()
        self._handlers: set[asyncio.Task[None]] = set()
        # Shared by every connection: handlers still finishing after a reconnect count against it too.
        self._slots = asyncio.Semaphore(settings.incoming_handlers)
        self._stopping = False
        self._acks: collections.deque[tuple[float, _Ack]] = collections.deque()  # oldest first
        self._sweeper: asyncio.Task[None] | None = None

    def _make_client(self) -> aiomqtt.Client:
        will = aiomqtt.Will(self.state_topic, OFFLINE, qos=1, retain=True)
        kwargs = client_kwargs(self.settings, self.client_id, self._password)
        client = aiomqtt.Client(will=will, **kwargs)  # type: ignore[arg-type]
        bound_incoming(client, self.settings.incoming_queue, self._wanted, self._metrics.incoming_dropped)
        coalesce_writes(client._client)  # the paho client aiomqtt wraps (pinned version)
        if self.settings.protocol == "5":
            window_from_connack(client, PUBLISH_WINDOW)
        return client

    @property
    def window(self) -> int:
        """QoS 1 publishes the connection lets be in flight at once (``PUBLISH_WINDOW`` or fewer, as
        the broker's CONNACK says; paho's default of 20 over MQTT 3.1.1, which has no such property)."""
        client = self._client
        return int(client._client._max_inflight_messages) if client is not None else PUBLISH_WINDOW

    @property
    def can_publish(self) -> bool:
        """Whether a publish now goes to a connection (it may still be a dead one not yet detected)."""
        return self._client is not None

    def publish_nowait(
        self, topic: str, payload: bytes | str, retain: bool, qos: int = 1
    ) -> asyncio.Future[bool] | bool:
        """Hand a message to the connection without waiting: False when there is none (dropped), True
        when it went out complete (QoS 0), else a future that says whether the broker acknowledged it
        (PUBACK) within ``PUBLISH_TIMEOUT_S`` (checked every ``ACK_SWEEP_S``).

        This is aiomqtt's ``Client.publish`` without its per-call costs, which grow with the publishes
        in flight: it scans every pending message id twice per call, and its ``asyncio.wait_for`` makes
        a task and a timer. At 1,500 device states/s with ~1,000 awaiting PUBACK they took a quarter of
        the gateway's CPU (py-spy, docs/performance.md). aiomqtt's own PUBACK callback completes the
        future: it pops the message id from ``_pending_publishes`` and calls ``set()``.
        """
        client = self._client
        if client is None:
            return False
        info = client._client.publish(topic, payload, qos, retain)  # the paho client (pinned aiomqtt)
        if info.rc != MQTT_ERR_SUCCESS:
            log.debug("mqtt_publish_failed", topic=topic, error=mqtt_error_string(info.rc))
            return False
        if info.is_published():
            return True
        loop = asyncio.get_running_loop()
        pending: dict[int, Any] = client._pending_publishes  # aiomqtt types it dict[int, asyncio.Event]
        ack = _Ack(loop.create_future(), pending, info.mid)
        pending[info.mid] = ack
        self._acks.append((loop.time() + PUBLISH_TIMEOUT_S, ack))
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = loop.create_task(self._sweep_acks(), name="mqtt-puback-timeouts")
        return ack.future

    async def publish(self, topic: str, payload: bytes | str, retain: bool, qos: int = 1) -> bool:
        """Publish if connected, else drop and return False (retained state is re-sent on reconnect).

        QoS 1 returns once the broker acknowledged (PUBACK), False when no PUBACK came within
        ``PUBLISH_TIMEOUT_S`` or the connection was lost first (``publish_nowait``). Device states do
        not come this way: they never wait for a PUBACK (iot_gateway.outbox).
        """
        sent = self.publish_nowait(topic, payload, retain, qos)
        if isinstance(sent, bool):
            return sent
        acknowledged = await sent  # cancelled: the sweeper still takes it out of the pending table
        if not acknowledged:
            log.debug("mqtt_publish_failed", topic=topic, error="no PUBACK")
        return acknowledged

    async def _sweep_acks(self) -> None:
        """Fail the publishes whose PUBACK is overdue (one timer for all of them, oldest first)."""
        acks = self._acks  # emptied in place, never replaced: this loop and publish_nowait share it
        loop = asyncio.get_running_loop()
        while acks:
            await asyncio.sleep(ACK_SWEEP_S)
            now = loop.time()
            while acks and (acks[0][1].future.done() or acks[0][0] <= now):
                _, ack = acks.popleft()
                ack.fail()

    def _fail_acks(self) -> None:
        """The connection is gone: no PUBACK will come for what it carried (the session is clean)."""
        acks = self._acks
        while acks:
            acks.popleft()[1].fail()

    async def subscribe(self, topic: str) -> None:
        assert self._client is not None
        if self.settings.protocol == "5":
            # retain_handling=0: retained commands are still delivered so the gateway can count and
            # ignore them. Retain-As-Published: without it the broker clears the flag on live delivery,
            # and a command published live with the retain flag would look like a normal one and run.
            # noLocal off: the sync marker is our own.
            await self._client.subscribe(topic, options=SubscribeOptions(qos=1, retainAsPublished=True))
        else:
            # MQTT 3.1.1 has no such option: only retained-at-subscribe messages carry the flag.
            await self._client.subscribe(topic, qos=1)

    async def run(self) -> None:
        """Connect forever with capped, jittered exponential backoff."""
        failures = 0
        while not self._stopping:
            try:
                async with mqtt_connected(self._make_client()) as client:
                    self._client = client
                    failures = 0
                    self._metrics.mqtt_reconnects.inc()
                    log.info("mqtt_connected", host=self.settings.host, port=self.settings.port)
                    # Messages flow while on_connect runs: it waits for retained ones (inventory sync).
                    reader = asyncio.create_task(self._read(client))
                    try:
                        await self._on_connect(self)
                        self.connected.set()
                        await reader
                    finally:
                        self._client = None
                        self.connected.clear()
                        self._fail_acks()
                        reader.cancel()
                        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                            await reader
            except aiomqtt.MqttError as err:
                failures += 1
                if failures == 1:
                    log.warning("mqtt_disconnected", error=str(err))
            delay = min(self.settings.reconnect_max_s, self.settings.reconnect_min_s * 2 ** min(failures, 16))
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    async def shutdown(self, task: asyncio.Task[None]) -> None:
        """Stop the connection task (see iot_gateway.lifecycle for why one cancel is not enough)."""
        self._stopping = True
        await cancel_and_wait(task)

    async def _read(self, client: aiomqtt.Client) -> None:
        # Up to incoming_handlers run concurrently (a slow command must not block the next message); they
        # never raise, and ones in flight finish even if the connection drops. A message is taken only
        # once a handler slot is free: until then it waits in aiomqtt's queue, which bound_incoming caps.
        messages = client.messages
        while True:
            await self._slots.acquire()
            try:
                message = await anext(messages)
            except BaseException:
                self._slots.release()
                raise
            self._metrics.incoming_waiting.set(len(messages))
            task = asyncio.create_task(self._handle(message))
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

    async def _handle(self, message: aiomqtt.Message) -> None:
        try:
            await self._on_message(message)
        finally:
            self._slots.release()

    @property
    def handlers_running(self) -> int:
        return len(self._handlers)

    @property
    def incoming_waiting(self) -> int:
        """Received messages not yet taken by a handler."""
        client = self._client
        return len(client.messages) if client is not None else 0

    async def close(self, final_state: str = OFFLINE) -> None:
        """Graceful stop: say offline ourselves (the will covers crashes)."""
        await self.publish(self.state_topic, final_state, retain=True)
