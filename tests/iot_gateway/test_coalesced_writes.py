"""Device states leave the gateway in batches: everything the outbox hands over within
``STATE_BATCH_S`` goes out in one socket write (``iot_gateway.mqtt.coalesce_writes``), and every
message still reaches a subscriber intact and in order, also when the kernel takes only part of a
write (a tiny send buffer) so that a packet is cut in the middle.

The write count is read off paho's own ``_sock_send`` (counted, not replaced): the real socket, the
real broker.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from bcc_contract.topics import Topics
from devices.site import MqttSettings
from iot_gateway.metrics import GatewayMetrics
from iot_gateway.mqtt import MqttLink
from iot_gateway.outbox import RetainedOutbox
from mosquitto import MosquittoProcess
from tests.support.gateway import probe
from tests.support.wait import eventually


@asynccontextmanager
async def counted_link(mosquitto: MosquittoProcess) -> AsyncIterator[tuple[MqttLink, list[int]]]:
    """A connected MqttLink and the sizes of the socket writes paho made since."""

    async def on_connect(link: MqttLink) -> None:
        return None

    async def on_message(message: object) -> None:
        return None

    settings = MqttSettings(url=mosquitto.url, username="gateway")
    link = MqttLink(
        settings, Topics().bridge_state("gw_batch"), "gateway", mosquitto.password("gateway"),
        on_connect, on_message, GatewayMetrics(),
    )  # fmt: skip
    task = asyncio.create_task(link.run())
    writes: list[int] = []
    try:
        await eventually(link.connected.is_set)
        assert link._client is not None
        paho: Any = link._client._client
        own_send = paho._sock_send

        def sock_send(data: bytes) -> int:
            sent = int(own_send(data))
            writes.append(sent)
            return sent

        paho._sock_send = sock_send
        yield link, writes
    finally:
        await link.shutdown(task)


async def test_a_batch_of_states_leaves_in_one_write_and_arrives_in_order(
    mosquitto: MosquittoProcess,
) -> None:
    topics = [f"bcc/batch_{i:03d}" for i in range(60)]
    async with probe(mosquitto, subscribe="bcc/+") as p, counted_link(mosquitto) as (link, writes):
        outbox = RetainedOutbox(link)
        mark = p.mark()
        for i, topic in enumerate(topics):  # one event-loop pass, as polls finishing close together
            outbox.put(topic, f'{{"n": {i}}}'.encode())
        assert writes == [], "the batch waits for STATE_BATCH_S"
        await eventually(lambda: len(p.messages) - mark >= len(topics), what="all 60 states")
        got = [(str(m.topic), bytes(m.payload)) for m in p.messages[mark:]]
        assert got == [(t, f'{{"n": {i}}}'.encode()) for i, t in enumerate(topics)]
        # 60 retained QoS 1 publishes (within the window of 90) in one send.
        assert len(writes) == 1, writes
        await eventually(lambda: outbox.in_flight == 0, what="every PUBACK")


async def test_a_write_the_kernel_cuts_short_goes_on_where_it_stopped(mosquitto: MosquittoProcess) -> None:
    payloads = [bytes([65 + i % 26]) * 20_000 for i in range(40)]  # 800 kB against a 4 kB send buffer
    topics = [f"bcc/cut_{i:03d}" for i in range(len(payloads))]
    async with probe(mosquitto, subscribe="bcc/+") as p, counted_link(mosquitto) as (link, writes):
        assert link._client is not None
        sock = link._client._client.socket()
        assert isinstance(sock, socket.socket)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        outbox = RetainedOutbox(link)
        mark = p.mark()
        for topic, payload in zip(topics, payloads, strict=True):
            outbox.put(topic, payload)
        await eventually(lambda: len(p.messages) - mark >= len(payloads), timeout=20, what="all 40 states")
        got = [(str(m.topic), bytes(m.payload)) for m in p.messages[mark:]]
        assert got == list(zip(topics, payloads, strict=True))
        # The 40 packets are of one size (same topic length, same payload length): a write that ends
        # between two multiples of it cut a packet, and the next write went on inside that packet.
        size, rest = divmod(sum(writes), len(payloads))
        assert rest == 0 and size > 20_000, (size, rest)
        ends = list(itertools.accumulate(writes))
        assert len(writes) > 1 and any(end % size for end in ends), f"no packet was cut: {writes}"
