"""Pieces shared by the benchmarks: percentiles, a raw paho round trip, the raw Modbus floor."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from pymodbus.client import AsyncModbusTcpClient

ROOT = Path(__file__).resolve().parent.parent


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)


class PahoRoundTrip:
    """Raw paho client: publish and wait for our own message back through the broker."""

    def __init__(self, host: str, port: int, user: str, password: str, topics: list[str]) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(user, password)
        self.arrived = threading.Event()
        self.last: bytes = b""
        self.expect = ""
        self.reply = b""
        self.online: set[str] = set()
        self.online_seen = threading.Event()
        self.states: set[str] = set()
        self.states_wanted = 1 << 30
        self.states_seen = threading.Event()
        self.state_messages = 0
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        sock = self.client.socket()
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as the gateway does
        self.client.loop_start()
        for t in topics:
            self.client.subscribe(t, qos=1)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self.last = bytes(msg.payload)
        if msg.topic == self.expect and not self.arrived.is_set():
            self.reply = self.last
            self.arrived.set()
        if msg.topic.count("/") == 1 and not msg.retain:
            self.state_messages += 1
            if len(self.states) < self.states_wanted:
                self.states.add(msg.topic)
                if len(self.states) >= self.states_wanted:
                    self.states_seen.set()
        if msg.payload == b"online":
            self.online.add(msg.topic)
            self.online_seen.set()

    def wait_states(self, devices: int, timeout: float) -> None:
        """Block until ``devices`` distinct state topics have been published (live, not retained)."""
        self.states_wanted = devices
        if len(self.states) < devices and not self.states_seen.wait(timeout):
            raise TimeoutError(f"only {len(self.states)} of {devices} devices published state")
        self.state_messages = 0

    def wait_online(self, topic: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while topic not in self.online:
            if not self.online_seen.wait(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"{topic} never came online")
            self.online_seen.clear()

    def request(self, topic: str, payload: bytes, reply: str, timeout: float = 5.0) -> tuple[float, bytes]:
        self.expect = reply
        self.arrived.clear()
        t0 = time.perf_counter()
        self.client.publish(topic, payload, qos=1)
        if not self.arrived.wait(timeout):
            raise TimeoutError(topic)
        return time.perf_counter() - t0, self.reply

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


async def modbus_floor(host: str, port: int, unit: int, count: int) -> list[float]:
    client = AsyncModbusTcpClient(host, port=port, timeout=2, retries=0)
    await client.connect()
    out = []
    try:
        for i in range(count):
            t0 = time.perf_counter()
            await client.write_coil(7, bool(i % 2), device_id=unit)
            await client.read_coils(7, count=1, device_id=unit)
            out.append(time.perf_counter() - t0)
    finally:
        client.close()
    return out
