"""The gateway's QoS 1 publish (``MqttLink.publish``) returns True only once the broker acknowledged,
and False when no PUBACK comes in time (a frozen broker); nothing is left in aiomqtt's pending table.
Up to the broker's Receive Maximum of publishes are in flight at once."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from bcc_contract.topics import Topics
from devices.site import MqttSettings
from iot_gateway import mqtt
from iot_gateway.metrics import GatewayMetrics
from iot_gateway.mqtt import MqttLink
from mosquitto import MosquittoProcess
from tests.support.wait import eventually


async def test_publish_waits_for_puback_and_fails_without_one(
    mosquitto: MosquittoProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mqtt, "PUBLISH_TIMEOUT_S", 0.5)  # the timeout is configuration, not behaviour
    settings = MqttSettings(url=mosquitto.url, username="gateway")
    connected = asyncio.Event()

    async def on_connect(link: MqttLink) -> None:
        connected.set()

    async def on_message(message: object) -> None:
        return None

    link = MqttLink(
        settings,
        Topics().bridge_state("gw_test"),
        "gateway",
        mosquitto.password("gateway"),
        on_connect,
        on_message,
        GatewayMetrics(),
    )
    task = asyncio.create_task(link.run())
    try:
        await eventually(link.connected.is_set)
        assert await link.publish("bcc/ack_test", b"1", retain=False)
        # Our broker's Receive Maximum (mosquitto.conf max_inflight_messages 100), not paho's 20.
        assert link._client is not None and link._client._client.max_inflight_messages == 100
        pid = mosquitto.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # the broker stops reading: no PUBACK
        try:
            t0 = time.monotonic()
            results = await asyncio.gather(*(link.publish("bcc/ack_test", b"2", False) for _ in range(20)))
            waited = time.monotonic() - t0
        finally:
            os.kill(pid, signal.SIGCONT)
        assert results == [False] * 20
        assert 0.5 <= waited < 0.5 + mqtt.ACK_SWEEP_S + 1.0
        assert link._client is not None and not link._client._pending_publishes
        assert await link.publish("bcc/ack_test", b"3", retain=False)  # the broker is back
    finally:
        await link.shutdown(task)
