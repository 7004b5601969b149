"""``bcc alarms``: reads device state, availability, the gateway's bridge state and (behind a WAN) its
building's link from MQTT, evaluates the rules, and publishes each alarm's state (retained) and every
transition (docs/alarms.md).

One task holds the MQTT connection (reconnect with capped, jittered backoff; ``offline`` on
``<base>/alarms/status`` is the last will), one judges time (delays, stale values, shelving expiry)
every ``tick_s``. Every batch of transitions is committed to the state file before it is published;
events wait there until the broker acknowledged them, so none is lost while the broker is away.
Operators act on ``<base>/alarms/command`` and get their answer on ``<base>/alarms/results``.

Standby: every evaluator reads the same inputs, but only the holder of the lease in the state database
(``alarm_lease``) evaluates, persists and publishes. A standby keeps the latest inputs; when the
active one's lease runs out (it stopped renewing, or released it on a clean stop), the standby takes
the lease, resumes the persisted alarms and replays those inputs, so exactly one evaluator raises each
alarm and a takeover raises nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiomqtt
import orjson
import structlog
from sqlalchemy.exc import SQLAlchemyError

from bcc_common.lease import LeaseChange, LeaseTerm
from bcc_common.process import cancel_and_wait
from bcc_common.timefmt import iso_ms
from bcc_contract.alarms import ACTIONS
from bcc_contract.fleet import LINK_DOWN, LINK_UP, FleetView
from bcc_contract.topics import OFFLINE, ONLINE, Topics
from iot_gateway.alarms.config import AlarmsConfig
from iot_gateway.alarms.engine import Alarm, AlarmEvent, CommandError, Evaluator
from iot_gateway.alarms.metrics import AlarmMetrics
from iot_gateway.alarms.notify import AlarmNotifier, health_of
from iot_gateway.alarms.store import AlarmStore
from iot_gateway.health import HealthServer
from iot_gateway.lifecycle import mqtt_connected
from iot_gateway.mqtt import PUBLISH_TIMEOUT_S, client_kwargs

log = structlog.get_logger(__name__)

MAX_COMMAND_BYTES = 4096
OUTBOX_BATCH = 500
AVAILABILITY = {ONLINE.encode(): True, OFFLINE.encode(): False}
# A WAN link notification: up, down, or removed (an empty retained message: no bridge any more).
LINK_PAYLOADS = (LINK_UP.encode(), LINK_DOWN.encode(), b"")
LEASE = "evaluator"
HEALTH_EVERY_S = 60.0  # alarm health metrics are recomputed from the database this often
ACTIVE, STANDBY = "active", "standby"


def _json_object(payload: bytes) -> dict[str, Any] | None:
    """The payload as a JSON object, or None (not JSON, or JSON of another shape)."""
    try:
        found = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return found if isinstance(found, dict) else None


def iso_or_none(ts: float | None) -> str | None:
    return None if ts is None else iso_ms(ts)


def state_payload(alarm: Alarm, now: float) -> dict[str, Any]:
    """What ``<base>/alarms/state/<alarm>`` carries (docs/alarms.md)."""
    rule = alarm.spec.rule
    return {
        "alarm": alarm.spec.id,
        "rule": rule.id,
        "device": alarm.spec.device,
        "point": rule.point,
        "kind": rule.kind,
        "severity": rule.severity,
        "state": alarm.state.value,
        "active": alarm.active,
        "value": alarm.value,
        "limit": rule.limit,
        "message": rule.message.model_dump(),
        "since": iso_or_none(alarm.since),
        "raised_at": iso_or_none(alarm.raised_at),
        "shelved": None
        if alarm.shelved_until is None
        else {"by": alarm.shelved_by, "reason": alarm.shelve_reason, "until": iso_ms(alarm.shelved_until)},
        "ts": iso_ms(now),
    }


class AlarmService:
    def __init__(
        self, config: AlarmsConfig, clock: Callable[[], float] = time.time, freeze_gc: bool = False
    ) -> None:
        self.config = config
        self.clock = clock
        # ``bcc alarms`` (its own process): once active, the objects alive then (thousands of alarms)
        # leave the collector's generations, so a full collection no longer stalls the judging of a
        # state (p99 65-70 ms -> 11-17 ms at 500 x 30, docs/performance.md). Not for a shared process.
        self.freeze_gc = freeze_gc
        self.topics = Topics(config.mqtt.base_topic, config.mqtt.discovery_prefix)
        self.store = AlarmStore(config.database_url, create=config.own_database)
        self.evaluator = Evaluator(config.rules, start=clock())
        self.notifier = AlarmNotifier(config.rules, self.store, config.roster)
        if not self.store.notifying:
            log.info("alarms_email_off", reason="no portal outbox and staff accounts in the state database")
        self.metrics = AlarmMetrics()
        self._health_at = 0.0
        self.forgotten: list[str] = []
        devices = [d.id for d in config.loaded.site.devices]
        self._state_topics = {self.topics.state(d): d for d in devices}
        # With bulk telemetry (the shipped default) live states come in the gateway's batches, one message
        # per window instead of one per device state: docs/alarms.md, "Inputs".
        self.bulk = config.loaded.site.gateway.telemetry_batch_ms is not None
        self._last_ts: dict[str, str] = {}  # device -> ``ts`` of the newest state judged
        self._devices = frozenset(devices)
        self._availability_topics = {self.topics.availability(d): d for d in devices}
        # The site's own gateway (fleet: one bridge state per gateway, docs/mqtt.md) and, for a building
        # behind a WAN, its bridge's link notification: offline when either says so (FleetView's rule).
        self._gateway = config.loaded.site.gateway_id
        self._bridge_topic = self.topics.bridge_state(self._gateway)
        self._link_topic = self.topics.bridge_link(self._gateway)
        self.fleet = FleetView(self.topics)
        self._telemetry_topic = self.topics.bridge_telemetry(config.loaded.site.gateway_id)
        self._client: aiomqtt.Client | None = None
        self._publish_lock = asyncio.Lock()
        self._dirty: set[str] = set()  # committed, not yet published
        self._flush = asyncio.Event()
        self.connected = asyncio.Event()
        self.became_active = asyncio.Event()
        self.commands_handled = 0
        # The latest inputs (time, value), replayed into a fresh evaluator when this one takes over.
        self._last_state: dict[str, tuple[float, dict[str, Any]]] = {}
        self._last_availability: dict[str, tuple[float, bool]] = {}
        self._last_bridge: tuple[float, str | None] | None = None  # (time, why offline)
        self._last_backlog: tuple[float, dict[str, Any]] | None = None
        self._last_recorders: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self.lease = LeaseTerm(config.lease_s)  # active while it holds the database's lease
        self._ever_connected = False

    @property
    def active(self) -> bool:
        return self.lease.active(self.clock())

    # --- lease ------------------------------------------------------------------------------------
    async def _check_lease(self, now: float) -> None:
        """Renew (or take) the lease every lease_s / 3; take over with the persisted alarms."""
        if not self.lease.due(now):
            return
        try:
            held = self.store.take_lease(LEASE, self.config.client_id, now, self.config.lease_s)
        except SQLAlchemyError as err:
            log.warning("alarms_lease_failed", error=str(err).splitlines()[0])
            held = False
        change = self.lease.record(held, now)
        if change is LeaseChange.GAINED:
            await self._take_over(now)
        elif change is LeaseChange.LOST:
            log.warning("alarms_lease_lost", instance=self.config.instance)
            await self._say_status()

    async def _take_over(self, now: float) -> None:
        """Resume the persisted alarms, replay the latest inputs, publish everything."""
        self.evaluator = Evaluator(self.config.rules, start=now)
        self.evaluator.on_link(self._client is not None, now, never_connected=not self._ever_connected)
        records = self.store.load()
        self.forgotten += self.evaluator.restore(records)
        self.store.forget(self.forgotten)
        log.info("alarms_active", instance=self.config.instance, restored=len(records))
        events: list[AlarmEvent] = []
        if self._last_bridge is not None:
            events += self.evaluator.on_bridge(self._last_bridge[1], self._last_bridge[0])
        if self._last_backlog is not None:
            events += self.evaluator.on_backlog(self._last_backlog[1], self._last_backlog[0])
        for instance, (t, status) in self._last_recorders.items():
            events += self.evaluator.on_recorder(instance, status, t)
        for device, (t, online) in self._last_availability.items():
            events += self.evaluator.on_availability(device, online, t)
        for device, (t, state) in self._last_state.items():
            events += self.evaluator.on_state(device, state, t)
        events += self.evaluator.tick(now)
        if self.freeze_gc:
            gc.freeze()
        self.became_active.set()
        await self._commit(events)
        await self._publish_all()

    async def _publish_all(self) -> None:
        """What the broker may have missed (or lost): every alarm that ever left normal, removals."""
        client = self._client
        if client is None or not self.active:
            return
        for alarm_id in self.forgotten:  # their rule is gone: remove their retained state
            await client.publish(
                self.topics.alarm_state(alarm_id), b"", qos=1, retain=True, timeout=PUBLISH_TIMEOUT_S
            )
        self.forgotten = []
        known = [i for i, a in self.evaluator.alarms.items() if a.since is not None]
        await self._publish_pending(known)
        await self._say_status()

    async def _say_status(self) -> None:
        client = self._client
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await client.publish(
                    self.topics.alarm_service(self.config.instance),
                    ACTIVE if self.active else STANDBY,
                    qos=1,
                    retain=True,
                    timeout=PUBLISH_TIMEOUT_S,
                )

    # --- evaluation -------------------------------------------------------------------------------
    async def _commit(self, events: list[AlarmEvent]) -> None:
        """Persist now, publish soon: the database is never behind what the broker was told. The
        publishing is the flusher's (``_flush_loop``), so the next state message is judged at once
        instead of waiting for the broker's acknowledgements of this one's alarms."""
        if not events or not self.active:
            return
        changed = list(dict.fromkeys(e.alarm for e in events))
        bodies = [(e.at, self._event_payload(e)) for e in events]
        try:
            notices = self.notifier.on_events(events, self.evaluator)
        except Exception:  # the transitions are stored and published even when their mails cannot be made
            log.exception("alarm_notices_failed", alarms=changed)
            notices = []
        self.store.save(self.evaluator.snapshot(changed), bodies, self.clock(), notices)
        for event in events:
            log.info(
                "alarm_transition",
                transition=event.event,
                alarm=event.alarm,
                state=event.state.value,
                who=event.who,
            )
        self._dirty.update(changed)
        self._flush.set()

    async def _flush_loop(self) -> None:
        """Publish what ``_commit`` stored, in batches: whatever changed while one batch was in flight
        goes out together in the next."""
        while True:
            await self._flush.wait()
            self._flush.clear()
            changed, self._dirty = list(self._dirty), set()
            await self._publish_pending(changed)

    def _event_payload(self, event: AlarmEvent) -> dict[str, Any]:
        spec = self.evaluator.alarms[event.alarm].spec
        return {
            "alarm": event.alarm,
            "event": event.event,
            "state": event.state.value,
            "severity": spec.severity,
            "rule": spec.rule.id,
            "device": spec.device,
            "who": event.who,
            "note": event.note,
            "value": event.value,
            "at": iso_ms(event.at),
            "evaluator": self.config.instance,
        }

    async def _publish_pending(self, alarm_ids: list[str]) -> None:
        """Publish these alarms' states, then every event not yet acknowledged by the broker. A broker
        that goes away meanwhile loses nothing: states are re-published and the outbox flushed on the
        next connect."""
        client = self._client
        if client is None or not self.active:
            return  # everything is re-sent on the next connect or takeover
        async with self._publish_lock:
            try:
                now = self.clock()
                states = [
                    (
                        self.topics.alarm_state(i),
                        orjson.dumps(state_payload(self.evaluator.alarms[i], now)),
                        True,
                    )
                    for i in alarm_ids
                ]
                while True:
                    batch = self.store.unpublished(OUTBOX_BATCH)
                    events = [
                        (self.topics.alarm_events, orjson.dumps({"seq": q, **b}), False) for q, b in batch
                    ]
                    # All in flight at once, in this order on the wire (states before their events):
                    # one round trip to the broker rather than one per message.
                    results = await asyncio.gather(
                        *(
                            client.publish(topic, body, qos=1, retain=retain, timeout=PUBLISH_TIMEOUT_S)
                            for topic, body, retain in states + events
                        ),
                        return_exceptions=True,
                    )
                    sent = results[len(states) :]
                    self.store.mark_published(
                        [
                            q
                            for (q, _), r in zip(batch, sent, strict=True)
                            if not isinstance(r, BaseException)
                        ],
                        self.clock(),
                    )
                    failed = [r for r in results if isinstance(r, BaseException)]
                    if failed:
                        raise failed[0]
                    if len(batch) < OUTBOX_BATCH:
                        break
                    states = []
            except aiomqtt.MqttError as err:
                log.info("alarms_publish_deferred", error=str(err))

    async def _tick_loop(self) -> None:
        while True:
            await self.step()
            await asyncio.sleep(self.config.tick_s)

    async def step(self) -> None:
        """One pass of time: the lease, delays and expiries, escalations and the daily summary (active
        only), and the health metrics every HEALTH_EVERY_S."""
        now = self.clock()
        await self._check_lease(now)
        if self.active:
            await self._commit(self.evaluator.tick(now))
            notices = self.notifier.escalations(self.evaluator, now)
            notices += self.notifier.daily_summary(self.evaluator, now)
            self.store.enqueue(notices)
        if now >= self._health_at:
            self._health_at = now + HEALTH_EVERY_S
            self.metrics.update(health_of(self.store, self.config.rules, now))

    def health_status(self) -> tuple[bool, dict[str, object]]:
        return True, {"active": self.active, "connected": self.connected.is_set()}

    # --- MQTT -------------------------------------------------------------------------------------
    async def _on_connect(self, client: aiomqtt.Client) -> None:
        events = self.evaluator.on_link(True, self.clock())
        t = self.topics
        # Inputs at QoS 0: the session is clean, so QoS 1 would keep nothing across a reconnect (the
        # retained states come again), and it costs a PUBACK per message (at 500 states/s, a third of
        # the evaluator's CPU was socket writes). Commands at QoS 1.
        inputs = [
            (t.all_availability, 0),
            (self._bridge_topic, 0),
            (self._link_topic, 0),
            (t.report_backlog, 0),
            (t.all_recorder_status, 0),
        ]
        if self.bulk:
            # Live states from the batches; the devices' retained states once, for their values now:
            # the broker queues the retained messages when it handles the SUBSCRIBE, before the
            # UNSUBSCRIBE that follows, so they arrive and nothing live comes on these topics after.
            await client.subscribe([(self._telemetry_topic, 0), *inputs])
            await client.subscribe(t.all_state, qos=0)
            await client.unsubscribe(t.all_state)
        else:
            await client.subscribe([(t.all_state, 0), *inputs])
        await client.subscribe(t.alarm_commands, qos=1)
        self._client = client
        self._ever_connected = True
        await self._commit(events)  # "alarm system degraded" after a long loss of the broker
        await self._publish_all()  # when active
        if not self.active:
            await self._say_status()

    async def handle(self, topic: str, payload: bytes, retained: bool) -> None:
        now = self.clock()
        ev = self.evaluator
        if topic in self._state_topics:
            state = _json_object(payload)
            if state is None:
                log.warning("alarm_bad_state", topic=topic)
                return
            await self._commit(self._on_state(self._state_topics[topic], state, now))
        elif topic == self._telemetry_topic and self.bulk:
            await self._commit(self._on_batch(payload, now))
        elif (instance := self.topics.recorder_of_status(topic)) is not None:
            status = _json_object(payload) if payload else None  # empty: taken out of service
            if payload and status is None:
                log.warning("alarm_bad_recorder_status", topic=topic)
                return
            self._last_recorders[instance] = (now, status)
            if self.active:
                await self._commit(ev.on_recorder(instance, status, now))
        elif topic == self.topics.report_backlog:
            backlog = _json_object(payload)
            if backlog is None:  # an empty retained message or garbage: nothing to judge
                log.warning("alarm_bad_backlog", topic=topic)
                return
            self._last_backlog = (now, backlog)
            if self.active:
                await self._commit(ev.on_backlog(backlog, now))
        elif topic in (self._bridge_topic, self._link_topic):
            await self._on_gateway(topic, payload, now)
        elif topic in self._availability_topics:
            if payload not in AVAILABILITY:
                # an empty retained message (a device removed) or garbage says nothing either way
                log.warning(
                    "alarm_bad_availability", topic=topic, payload=payload[:40].decode(errors="replace")
                )
                return
            online = AVAILABILITY[payload]
            device = self._availability_topics[topic]
            self._last_availability[device] = (now, online)
            if self.active:
                await self._commit(ev.on_availability(device, online, now))
        elif topic == self.topics.alarm_commands and not retained and self.active:
            await self._command(payload, now)

    async def _on_gateway(self, topic: str, payload: bytes, now: float) -> None:
        """The gateway's state (``online``/``offline``) or its building's link (``1``/``0``, empty: no
        bridge any more); anything else says nothing either way. The gateway_offline alarm follows
        FleetView's ``why_offline``, as the console does."""
        if topic == self._bridge_topic and payload in AVAILABILITY:
            self.fleet.set_state(self._gateway, payload)
        elif topic == self._link_topic and payload.strip() in LINK_PAYLOADS:
            self.fleet.set_link(self._gateway, payload)
        else:
            log.warning("alarm_bad_gateway_input", topic=topic, payload=payload[:40].decode(errors="replace"))
            return
        why = self.fleet.why_offline(self._gateway)
        self._last_bridge = (now, why)
        if self.active:
            await self._commit(self.evaluator.on_bridge(why, now))

    def _on_state(self, device: str, state: dict[str, Any], now: float) -> list[AlarmEvent]:
        """Judge one device state, unless it is older than one already judged (a retained state read at
        connect can be newer than a batch still on its way); every state is kept for a takeover."""
        ts = state.get("ts")
        if isinstance(ts, str):  # ISO-8601 in one format (UTC, ms): text order is time order
            if ts < self._last_ts.get(device, ""):
                return []
            self._last_ts[device] = ts
        self._last_state[device] = (now, state)
        return self.evaluator.on_state(device, state, now) if self.active else []

    def _on_batch(self, payload: bytes, now: float) -> list[AlarmEvent]:
        """``{"<device>": [<state>, ...]}`` (iot_gateway/bulk.py): every state in order, one commit."""
        batch = _json_object(payload)
        if batch is None:
            log.warning("alarm_bad_batch", topic=self._telemetry_topic)
            return []
        events: list[AlarmEvent] = []
        for device, states in batch.items():
            if device not in self._devices or not isinstance(states, list):
                continue
            for state in states:
                if isinstance(state, dict):
                    events += self._on_state(device, state, now)
        return events

    async def _command(self, payload: bytes, now: float) -> None:
        """Apply one operator action; the answer goes to ``<base>/alarms/results``."""
        self.commands_handled += 1
        result: dict[str, Any] = {"status": "ok"}
        try:
            if len(payload) > MAX_COMMAND_BYTES:
                raise CommandError(f"command larger than {MAX_COMMAND_BYTES} bytes")
            try:
                cmd = orjson.loads(payload)
            except orjson.JSONDecodeError:
                raise CommandError("not JSON") from None
            if not isinstance(cmd, dict):
                raise CommandError("a command is a JSON object")
            result.update({k: cmd[k] for k in ("transaction", "alarm", "action") if k in cmd})
            events = self._apply(cmd, now)
        except CommandError as err:
            result.update(status="rejected", error=str(err))
            log.info("alarm_command_rejected", error=str(err))
        else:
            await self._commit(events)
        client = self._client
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError):  # the sender's own timeout applies
                await client.publish(
                    self.topics.alarm_results, orjson.dumps(result), qos=1, timeout=PUBLISH_TIMEOUT_S
                )

    def _apply(self, cmd: dict[str, Any], now: float) -> list[AlarmEvent]:
        alarm, action, who = cmd.get("alarm"), cmd.get("action"), cmd.get("by")
        note = cmd.get("note", "")
        if not isinstance(alarm, str):
            raise CommandError("'alarm' (an alarm id) is required")
        if action not in ACTIONS:
            raise CommandError(f"'action' must be one of {', '.join(ACTIONS)}")
        if not isinstance(who, str) or not isinstance(note, str):
            raise CommandError("'by' and 'note' are strings")
        if action == "ack":
            return self.evaluator.ack(alarm, who, note, now)
        if action == "unshelve":
            return self.evaluator.unshelve(alarm, who, note, now)
        duration = cmd.get("duration_s")
        if isinstance(duration, bool) or not isinstance(duration, int | float):
            raise CommandError("'duration_s' (seconds) is required to shelve")
        return self.evaluator.shelve(alarm, who, note, float(duration), now)

    async def _mqtt_loop(self) -> None:
        failures = 0
        settings = self.config.mqtt
        will = aiomqtt.Will(self.topics.alarm_service(self.config.instance), OFFLINE, qos=1, retain=True)
        while True:
            try:
                kwargs = client_kwargs(settings, self.config.client_id, self.config.password)
                async with mqtt_connected(aiomqtt.Client(will=will, **kwargs)) as client:  # type: ignore[arg-type]
                    failures = 0
                    await self._on_connect(client)
                    log.info("alarms_mqtt_connected", alarms=len(self.evaluator.alarms))
                    self.connected.set()
                    async for msg in client.messages:
                        payload = msg.payload if isinstance(msg.payload, bytes) else b""
                        await self.handle(str(msg.topic), payload, bool(msg.retain))
                        if self._flush.is_set():
                            # aiomqtt hands over queued messages without yielding: let the flusher
                            # publish this transition before the rest of a burst is judged
                            await asyncio.sleep(0)
            except aiomqtt.MqttError as err:
                failures += 1
                if failures == 1:
                    log.warning("alarms_mqtt_disconnected", error=str(err))
            finally:
                self._client = None
                self.connected.clear()
                self.evaluator.on_link(False, self.clock())
            delay = min(settings.reconnect_max_s, settings.reconnect_min_s * 2 ** min(failures, 16))
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Run until ``stop`` is set or the task is cancelled."""
        stop = stop or asyncio.Event()
        log.info("alarms_starting", rules=len(self.config.rules.book.rules), instance=self.config.instance)
        server: HealthServer | None = None
        if self.config.metrics_port:
            server = HealthServer(self.metrics.registry, self.health_status)
            await server.start(self.config.metrics_host, self.config.metrics_port)
        try:
            async with asyncio.TaskGroup() as tg:
                tasks = [
                    tg.create_task(self._mqtt_loop(), name="alarms-mqtt"),
                    tg.create_task(self._tick_loop(), name="alarms-tick"),
                    tg.create_task(self._flush_loop(), name="alarms-flush"),
                ]
                await stop.wait()
                # A clean stop publishes what is stored (and waits for a batch in flight to be
                # marked), so the next evaluator has nothing to send again.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                        changed, self._dirty = list(self._dirty), set()
                        await self._publish_pending(changed)
                if self.active:  # a standby takes over at once
                    with contextlib.suppress(SQLAlchemyError):
                        self.store.release_lease(LEASE, self.config.client_id)
                    self.lease.release()
                client = self._client
                if client is not None:  # a clean stop says offline itself; the will covers crashes
                    with contextlib.suppress(aiomqtt.MqttError):
                        await client.publish(
                            self.topics.alarm_service(self.config.instance),
                            OFFLINE,
                            qos=1,
                            retain=True,
                            timeout=PUBLISH_TIMEOUT_S,
                        )
                await cancel_and_wait(*tasks)
        finally:
            if server is not None:
                await server.close()
            self.store.close()
            log.info("alarms_stopped")


@contextlib.asynccontextmanager
async def running_alarms(config: AlarmsConfig, active: bool = True) -> AsyncIterator[AlarmService]:
    """Start the service in this event loop; yields it once MQTT is connected and (``active``) it holds
    the lease (tests, demo)."""
    service = AlarmService(config)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await asyncio.wait_for(service.connected.wait(), 10)
        if active:
            await asyncio.wait_for(service.became_active.wait(), 10)
        yield service
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
