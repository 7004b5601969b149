"""Incoming messages are bounded: a flood of 10,000 commands to unknown devices (from a paho client in its
own thread, through the real Mosquitto with the project's config) neither grows the gateway's asyncio
tasks nor its queue of waiting messages past ``incoming_handlers`` / ``incoming_queue``; every flood
command is either ignored (not this gateway's device: another gateway of the fleet may own it; counted)
or dropped and counted, and a real command to a simulated
device sent in the middle of the flood gets its ``ok``. Measured in-process by sampling every 2 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import orjson
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from iot_gateway.service import Gateway
from mosquitto import MosquittoProcess
from simulators.site import SiteSimulator
from tests.support.gateway import gateway_config, probe, running_gateway
from tests.support.wait import eventually

FLOOD = 10_000
HANDLERS = 8
QUEUE = 200
# The gateway's own tasks besides command handlers (MQTT link, reader, health, device pollers, ...) are
# counted before the flood; each handler may hold one more of aiomqtt's while it publishes its response,
# and the probe and the sampler add a few. Without the bound the flood reached thousands.
SLACK_TASKS = 10


@dataclass
class Peaks:
    tasks: int = 0
    handlers: int = 0
    waiting: int = 0
    samples: int = 0


@dataclass
class Flood:
    """A paho client publishing ``count`` commands to unknown devices from its own thread."""

    broker: MosquittoProcess
    count: int
    qos: int
    halfway: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    error: list[BaseException] = field(default_factory=list)

    def run(self) -> None:
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"flood-{time.monotonic_ns()}")
        client.username_pw_set("operator", self.broker.password("operator"))
        client.max_inflight_messages_set(100)
        try:
            client.connect(self.broker.host, self.broker.port)
            client.loop_start()
            infos = []
            for i in range(self.count):
                body = orjson.dumps({"relay_1": "ON", "transaction": f"flood-{i}", "ts": time.time()})
                infos.append(client.publish(f"bcc/nodev{i % 50}/set", body, qos=self.qos))
                if i == self.count // 2:
                    self.halfway.set()
            for info in infos:
                info.wait_for_publish(60)
        except BaseException as err:  # reported to the test
            self.error.append(err)
        finally:
            self.halfway.set()
            client.disconnect()
            client.loop_stop()
            self.done.set()


@contextlib.contextmanager
def flooding(flood: Flood) -> Iterator[Flood]:
    thread = threading.Thread(target=flood.run, name="flood", daemon=True)
    thread.start()
    try:
        yield flood
    finally:
        thread.join(90)


@contextlib.asynccontextmanager
async def sampling(gw: Gateway) -> AsyncIterator[Peaks]:
    peaks = Peaks()

    async def sample() -> None:
        while True:
            peaks.tasks = max(peaks.tasks, len(asyncio.all_tasks()))
            peaks.handlers = max(peaks.handlers, gw.link.handlers_running)
            peaks.waiting = max(peaks.waiting, gw.link.incoming_waiting)
            peaks.samples += 1
            await asyncio.sleep(0.002)

    task = asyncio.create_task(sample())
    try:
        yield peaks
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def rejected(gw: Gateway) -> float:
    """Commands to devices the gateway does not own: ignored and counted, never answered."""
    return gw.metrics.registry.get_sample_value("bcc_gateway_commands_not_owned_total") or 0.0


def dropped(gw: Gateway) -> float:
    return gw.metrics.registry.get_sample_value("bcc_gateway_mqtt_incoming_dropped_total") or 0.0


@pytest.mark.parametrize("qos", [1, 0])
async def test_flood_of_commands_is_bounded_and_real_commands_answered(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess, qos: int
) -> None:
    mqtt = {"incoming_handlers": HANDLERS, "incoming_queue": QUEUE}
    cfg = gateway_config(room_sim.site_for_clients(), mosquitto, mqtt)
    async with probe(mosquitto, subscribe="bcc/lights_a/#") as p, running_gateway(cfg) as gw:
        await p.wait_for("bcc/lights_a/availability", lambda v: v == "online")
        baseline = len(asyncio.all_tasks())
        async with sampling(gw) as peaks:
            with flooding(Flood(mosquitto, FLOOD, qos=qos)) as flood:
                await asyncio.to_thread(flood.halfway.wait, 30)
                mark = p.mark()
                real = {"relay_6": "ON", "transaction": "real-1", "ts": time.time()}
                await p.publish("bcc/lights_a/set", real)
                resp = await p.wait_for(
                    "bcc/lights_a/response", lambda r: r.get("transaction") == "real-1", 30, mark
                )
                await asyncio.to_thread(flood.done.wait, 90)
            assert not flood.error, flood.error
            # Settled: every flood command was ignored or dropped, none is left waiting.
            await eventually(lambda: rejected(gw) + dropped(gw) >= FLOOD, 60)
        assert resp["status"] == "ok", resp
        assert room_sim.device("lights_a").get_point("relay_6") is True
        assert rejected(gw) + dropped(gw) == FLOOD, (rejected(gw), dropped(gw))
        assert peaks.samples > 100
        assert peaks.handlers <= HANDLERS, peaks
        assert peaks.waiting <= 2 * QUEUE, peaks  # commands to unknown devices: QUEUE
        assert peaks.tasks <= baseline + 2 * HANDLERS + SLACK_TASKS, (baseline, peaks)

        # Afterwards the gateway answers as usual.
        mark = p.mark()
        after = {"relay_7": "ON", "transaction": "after-1", "ts": time.time()}
        await p.publish("bcc/lights_a/set", after)
        resp = await p.wait_for(
            "bcc/lights_a/response", lambda r: r.get("transaction") == "after-1", 10, mark
        )
        assert resp["status"] == "ok", resp
