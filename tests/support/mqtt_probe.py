"""A paho MQTT client for broker tests: records CONNACK, SUBACK, PUBACK and messages; every wait is bounded.

paho runs its network loop in its own thread; waits run in a worker thread (asyncio.to_thread) so the
event loop, and any broker on it, keeps running.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

WAIT_S = 5.0
V311 = mqtt.MQTTv311
V5 = mqtt.MQTTv5


class Probe:
    """One MQTT connection as ``username`` (a role), or anonymous when ``username`` is None."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str | None,
        password: str | None,
        protocol: int,
        client_id: str | None = None,
    ) -> None:
        self.host, self.port, self.username = host, port, username
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"probe-{username}-{secrets.token_hex(4)}",
            protocol=MQTTProtocolVersion(protocol),
            reconnect_on_failure=False,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.connack: ReasonCode | None = None
        self.disconnected: ReasonCode | None = None
        self.pubacks: dict[int, ReasonCode] = {}
        self.subacks: dict[int, list[ReasonCode]] = {}
        self.messages: list[tuple[str, bytes, bool]] = []  # topic, payload, retain
        self._cond = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    # paho callbacks (network thread) -------------------------------------------------------------
    def _notify(self, change: Callable[[], None]) -> None:
        with self._cond:
            change()
            self._cond.notify_all()

    def _on_connect(self, _c: Any, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        self._notify(lambda: setattr(self, "connack", rc))

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, _rc: ReasonCode, _p: Any) -> None:
        self._notify(lambda: setattr(self, "disconnected", _rc))

    def _on_publish(self, _c: Any, _u: Any, mid: int, rc: ReasonCode, _p: Any) -> None:
        self._notify(lambda: self.pubacks.__setitem__(mid, rc))

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, rcs: list[ReasonCode], _p: Any) -> None:
        self._notify(lambda: self.subacks.__setitem__(mid, rcs))

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self._notify(lambda: self.messages.append((msg.topic, bytes(msg.payload), msg.retain)))

    # awaitable API -------------------------------------------------------------------------------
    async def wait(self, predicate: Callable[[], bool], timeout_s: float = WAIT_S) -> bool:
        def blocking() -> bool:
            with self._cond:
                return self._cond.wait_for(predicate, timeout_s)

        return await asyncio.to_thread(blocking)

    async def connect(self) -> ReasonCode:
        await asyncio.to_thread(self.client.connect, self.host, self.port, 30)
        self.client.loop_start()
        assert await self.wait(lambda: self.connack is not None), "no CONNACK"
        assert self.connack is not None
        return self.connack

    async def publish(
        self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False
    ) -> ReasonCode:
        """Publish and return the PUBACK reason code (QoS 1)."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        assert await self.wait(lambda: info.mid in self.pubacks), f"no PUBACK for {topic}"
        return self.pubacks[info.mid]

    async def subscribe(self, topics: list[str], qos: int = 1) -> list[ReasonCode]:
        _rc, mid = self.client.subscribe([(t, qos) for t in topics])
        assert mid is not None
        assert await self.wait(lambda: mid in self.subacks), "no SUBACK"
        return self.subacks[mid]

    def got(self, topic: str, payload: bytes) -> bool:
        with self._cond:
            return any(t == topic and p == payload for t, p, _r in self.messages)

    async def wait_for_message(self, topic: str, payload: bytes, timeout_s: float = WAIT_S) -> bool:
        return await self.wait(
            lambda: any(t == topic and p == payload for t, p, _ in self.messages), timeout_s
        )

    async def close(self) -> None:
        self.client.disconnect()
        await asyncio.to_thread(self.client.loop_stop)
        # paho 2.2 closes the socket pair that wakes its loop thread only in Client.__del__; this
        # object and the client form a cycle (callbacks), so the garbage collector could finalize the
        # sockets first and raise ResourceWarning (an error under filterwarnings=error). Close it now.
        self.client._reset_sockets()
