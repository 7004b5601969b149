"""Helpers for gateway tests: a site pointed at the test broker and simulators, an in-process gateway,
and an MQTT probe that waits for messages (never a blind sleep)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
import orjson

from devices.loader import LoadedSite, site_from_dict
from iot_gateway.config import GatewayConfig, resolve_mqtt
from iot_gateway.service import Gateway
from mosquitto import MosquittoProcess


def tuned_site(
    loaded: LoadedSite,
    keep: Iterable[str] | None = None,
    poll_s: Mapping[str, Mapping[str, float]] | None = None,
    buses: Mapping[str, Mapping[str, Any]] | None = None,
) -> LoadedSite:
    """``loaded`` with only the devices in ``keep`` (all when None), per-device poll interval
    overrides, e.g. ``{"env_front": {"default": 0.1}}``, and bus settings by bus name, e.g.
    ``{"wall_lan": {"port": 5999}}`` (validated like a site file; each bus's timeout is shortened to
    its shortest interval, as the loader requires)."""
    raw = loaded.site.model_dump(mode="json", exclude_none=True)
    for bus in raw["buses"]:
        bus.update((buses or {}).get(bus["name"], {}))
    shortest = min((s for d in (poll_s or {}).values() for s in d.values()), default=None)
    if shortest is not None:
        for bus in raw["buses"]:
            bus["timeout_ms"] = min(bus.get("timeout_ms", 1000), int(shortest * 1000))
    wanted = None if keep is None else set(keep)
    devices = [d for d in raw["devices"] if wanted is None or d["id"] in wanted]
    for d in devices:
        d["poll_s"] = {**d.get("poll_s", {}), **(poll_s or {}).get(d["id"], {})}
    raw["devices"] = devices
    raw.pop("console", None)  # a console naming a device left out would be refused
    return site_from_dict(raw, loaded.profiles)


def site_dict(
    loaded: LoadedSite,
    broker: MosquittoProcess,
    mqtt: dict[str, Any] | None = None,
    account: int = 1,
    **gateway: Any,
) -> dict[str, Any]:
    """``loaded`` as a site dict pointed at ``broker``, logging in as the ``account``-th gateway account
    (several gateways at once need ``@pytest.mark.broker_accounts(gateway=N)``)."""
    raw = loaded.site.model_dump(mode="json", exclude_none=True)
    raw["mqtt"] = {
        **raw["mqtt"],
        "url": broker.url,
        "username": broker.account("gateway", account),
        "reconnect_max_s": 1.0,
        **(mqtt or {}),
    }
    # The shipped sites keep bulk telemetry's pending states in a file relative to the working
    # directory; a test gets that file only where it asks for one (telemetry_spool_path=tmp_path / ...).
    raw["gateway"].pop("telemetry_spool_path", None)
    raw["gateway"] = {**raw["gateway"], **gateway}
    return raw


def gateway_config(
    loaded: LoadedSite,
    broker: MosquittoProcess,
    mqtt: dict[str, Any] | None = None,
    account: int = 1,
    **gateway: Any,
) -> GatewayConfig:
    site = site_from_dict(site_dict(loaded, broker, mqtt, account, **gateway), loaded.profiles)
    settings, password, problems = resolve_mqtt(
        site.site.mqtt, {"BCC_MQTT_PASSWORD": broker.password(broker.account("gateway", account))}, "<test>"
    )
    assert not problems, problems
    return GatewayConfig(loaded=site, mqtt=settings, password=password)


def with_ts(command: Mapping[str, Any]) -> dict[str, Any]:
    """``command`` as every sender in the product sends it: with ``ts``, the time it is sent (the
    gateway rejects a command without one unless the site sets ``gateway.require_command_ts: false``)."""
    return {**command, "ts": time.time()}


@contextlib.asynccontextmanager
async def running_gateway(config: GatewayConfig) -> AsyncIterator[Gateway]:
    gw = Gateway(config)
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    try:
        await asyncio.wait_for(gw.link.connected.wait(), 10)
        yield gw
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@dataclass
class Probe:
    """An MQTT client that records everything it receives and waits on predicates."""

    client: aiomqtt.Client
    messages: list[aiomqtt.Message] = field(default_factory=list)
    # The event loop's time (loop.time()) at which each message of ``messages`` arrived.
    arrived: list[float] = field(default_factory=list)
    _new: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        async for msg in self.client.messages:
            async with self._new:
                self.messages.append(msg)
                self.arrived.append(loop.time())
                self._new.notify_all()

    async def subscribe(self, topic: str) -> None:
        await self.client.subscribe(topic, qos=1)

    async def publish(self, topic: str, payload: Any, retain: bool = False) -> None:
        data = payload if isinstance(payload, bytes | str) else orjson.dumps(payload)
        await self.client.publish(topic, data, qos=1, retain=retain)

    async def wait_for(
        self, topic: str, pred: Callable[[Any], bool] = lambda _: True, timeout: float = 5.0, since: int = 0
    ) -> Any:
        """First message on ``topic`` (index >= since) whose decoded payload satisfies ``pred``."""

        def find() -> Any:
            for msg in self.messages[since:]:
                if str(msg.topic) == topic:
                    value = decode(msg.payload)
                    if pred(value):
                        return value
            return None

        async with asyncio.timeout(timeout):
            async with self._new:
                while (found := find()) is None:
                    await self._new.wait()
                return found

    def all(self, topic: str, since: int = 0) -> list[Any]:
        return [decode(m.payload) for m in self.messages[since:] if str(m.topic) == topic]

    def timed(self, topic: str, since: int = 0) -> list[tuple[float, Any]]:
        """(arrival loop time, decoded payload) of every message on ``topic`` from index ``since``."""
        return [
            (t, decode(m.payload))
            for t, m in zip(self.arrived[since:], self.messages[since:], strict=True)
            if str(m.topic) == topic
        ]

    def mark(self) -> int:
        return len(self.messages)


def decode(payload: Any) -> Any:
    raw = bytes(payload or b"")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode(errors="replace")


# Accounts held by open probes, per broker (id of the MosquittoProcess).
_held: dict[int, collections.Counter[str]] = {}


@contextlib.asynccontextmanager
async def probe(
    broker: MosquittoProcess, role: str = "portal", subscribe: str | None = "bcc/#"
) -> AsyncIterator[Probe]:
    # The broker makes the username the client id: a probe of a role with several accounts takes the
    # last one that no other probe holds, so that it never disconnects the service under test (which
    # logs in with the first: the gateway as gateway_1 under broker_accounts(gateway=2), a portal as
    # portal_1) nor another probe.
    held = _held.setdefault(id(broker), collections.Counter())
    if role in broker.credentials:
        names = [broker.account(role, k) for k in range(broker.accounts.get(role, 1), 0, -1)]
        account = next((n for n in names if not held[n]), names[-1])
    else:
        account = role
    held[account] += 1
    client = aiomqtt.Client(
        broker.host,
        broker.port,
        username=account,
        password=broker.password(account),
        identifier=f"probe-{role}-{time.monotonic_ns()}",
    )
    try:
        async with client:
            p = Probe(client)
            task = asyncio.create_task(p._pump())
            try:
                if subscribe:
                    await p.subscribe(subscribe)
                yield p
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                    await task
    finally:
        held[account] -= 1
