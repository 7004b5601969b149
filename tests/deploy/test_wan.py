"""A building behind a WAN (issue 17, item 3): network namespaces, the link cut under load.

- ``server`` (the center): Mosquitto as ``bcc install`` writes it with ``bridges: [room]`` (the bridge's
  account may publish only its gateway's topics), InfluxDB with authentication and the recorder (the
  shipped unit), which reads the bulk telemetry topic.
- ``building``: its own Mosquitto as ``bcc install`` writes it with ``bridge:`` (Mosquitto's bridge over
  TLS to the center, QoS 1, persistent sessions, bounded queue, notifications on
  ``bcc/bridge/<gw>/link``), the simulators (every read-only register counts up every second: the
  sensors' temperature is a counter) and the gateway (the shipped unit) against the local broker.

The building's only link is cut for ``BCC_WAN_CUT_S`` seconds (60 in ``make test``) under
``BCC_WAN_RATE`` device states per second (100: 100 sensors polled every second). During the cut a
command from inside the building is executed; the center sees the building offline (the bridge's last
will, read with the console's FleetView) while the gateway's own retained state still says online; a
command sent at the center is queued for the bridge's session and, delivered after the cut, answered
``stale`` and never executed (the simulator's write log); one sent without ``ts`` (it has no age) is
answered ``rejected`` and never executed either. After the cut every state the gateway
published (tapped on the building's broker, which the WAN does not touch) is exactly one point in
InfluxDB: none missing, none extra, no counter value twice. The issue's full figure is the same test
with ``BCC_WAN_CUT_S=600 BCC_WAN_RATE=1000`` (docs/performance.md, "Buildings behind a WAN").
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from bcc_contract.fleet import FleetView
from bcc_contract.topics import Topics
from tests.deploy.test_netns_e2e import INFLUX_ADMIN, MQTT_HOST, influxd, install, run_folders, show_logs
from tests.support.netns import (
    SERVER_ON_BUILDING_LINK,
    Host,
    Network,
    relocate,
    start_unit,
    three_hosts,
    wait_alive,
)
from tests.support.units import VENV_BCC, unit
from tests.support.wait import eventually_sync

CUT_S = float(os.environ.get("BCC_WAN_CUT_S", "60"))
RATE = int(os.environ.get("BCC_WAN_RATE", "100"))  # sensors, each polled (and changed) every second
PER_BUS = 10  # sensors per Modbus TCP endpoint (units 1..10 of one RS-485 line behind a TCP gateway)
PORT_BASE = 15020
SIM_CONTROL = 9999
GATEWAY = "gedung_a"
T = Topics()
STALE_COMMAND = "cut-1"
AGELESS_COMMAND = "cut-no-ts"


def sensors() -> list[str]:
    return [f"env_{i:04d}" for i in range(RATE)]


def site_file(path: Path) -> None:
    """The building's site: RATE sensors polled every second, one relay module for commands."""
    buses = [
        {
            "name": f"line_{b:03d}",
            "type": "tcp",
            "host": "127.0.0.1",
            "port": PORT_BASE + b,
            "timeout_ms": 500,
        }
        for b in range((RATE + PER_BUS - 1) // PER_BUS)
    ]
    buses.append({"name": "lights_lan", "type": "tcp", "host": "127.0.0.1", "port": PORT_BASE + len(buses)})
    devices: list[dict[str, Any]] = [
        {
            "id": device,
            "name": f"Sensor {i}",
            "profile": "envsensor",
            "bus": f"line_{i // PER_BUS:03d}",
            "unit": i % PER_BUS + 1,
            "poll_s": {"default": 1},
        }
        for i, device in enumerate(sensors())
    ]
    devices.append(
        {"id": "lights", "name": "Lampu gedung", "profile": "relay8", "bus": "lights_lan", "unit": 1}
    )
    site = {
        "site": GATEWAY,
        "mqtt": {"url": "mqtt://127.0.0.1:1883", "username": "gateway", "reconnect_max_s": 2},
        "gateway": {"command_ttl_s": 10, "telemetry_batch_ms": 100, "heartbeat_s": 600},
        "buses": buses,
        "devices": devices,
        "influxdb": {"auth": "basic", "username": "bcc_recorder"},
    }
    path.write_text(yaml.safe_dump(site, sort_keys=False), encoding="utf-8")


@dataclass
class Wan:
    net: Network
    center_root: Path
    building_root: Path
    logs: Path

    @staticmethod
    def secret(root: Path, name: str) -> str:
        return (root / "etc/bcc/secrets" / name).read_text().strip()

    def mqtt_args(self, root: Path, role: str, account: str | None = None) -> list[str]:
        """Options of the mosquitto clients (each account once per broker: its id is its name)."""
        password = self.secret(root, f"mqtt-{role}")
        return ["-h", "127.0.0.1", "-p", "1883", "-u", account or role, "-P", password]

    def center_view(self) -> FleetView:
        """The retained fleet topics at the center, read into the console's FleetView."""
        view = FleetView(T)
        argv = ["mosquitto_sub", *self.mqtt_args(self.center_root, "readonly"), "-v", "--retained-only"]
        argv += ["-W", "2", "-t", T.all_bridge_states, "-t", T.all_bridge_devices, "-t", T.all_bridge_links]
        for line in self.net.server.run(argv, check=False, timeout=20).stdout.splitlines():
            topic, _, payload = line.partition(" ")
            view.handle(topic, payload.encode())
        return view

    def center_publish(self, topic: str, payload: dict[str, Any]) -> None:
        argv = ["mosquitto_pub", *self.mqtt_args(self.center_root, "operator"), "-q", "1", "-t", topic]
        self.net.server.run([*argv, "-m", json.dumps(payload)])

    def influx(self, q: str, timeout: float = 10) -> list[dict[str, Any]]:
        body = self.net.server.curl(
            "-G", "http://127.0.0.1:8086/query", "-u", ":".join(INFLUX_ADMIN), "--max-time", str(timeout),
            "--data-urlencode", "db=bcc", "--data-urlencode", "epoch=ns", "--data-urlencode", f"q={q}",
            timeout=timeout + 20,
        )  # fmt: skip
        result = json.loads(body)["results"][0]
        assert "error" not in result, result
        series: list[dict[str, Any]] = result.get("series", [])
        return series

    def writes(self, device: str) -> list[dict[str, Any]]:
        url = f"http://127.0.0.1:{SIM_CONTROL}/writes/{device}"
        found: list[dict[str, Any]] = json.loads(self.net.building.curl(url))
        return found


def broker(host: Host, root: Path, logs: Path) -> None:
    """The installed mosquitto.conf with the root's paths, run as root (the test's folders are not the
    ``mosquitto`` user's)."""
    text = relocate((root / "etc/mosquitto/mosquitto.conf").read_text(encoding="utf-8"), root)
    assert "\nuser mosquitto\n" in text
    conf = root / "etc/mosquitto/netns-test.conf"
    conf.write_text(text.replace("\nuser mosquitto\n", "\nuser root\n"), encoding="utf-8")
    (root / "var/lib/mosquitto").mkdir(parents=True)
    host.spawn("mosquitto", ["/usr/sbin/mosquitto", "-c", str(conf)], logs / f"mosquitto-{host.role}.log")
    wait_alive(host, lambda: host.connects("127.0.0.1", 1883), f"Mosquitto of the {host.role} listens")


def tap(host: Host, args: list[str], topics: list[str], out: Path, log: Path, what: str) -> None:
    """``mosquitto_sub`` at QoS 1, one line per message into ``out``; connected before it returns."""
    argv = ["mosquitto_sub", *args, "-q", "1"]
    for topic in topics:
        argv += ["-t", topic]
    host.spawn(what, argv, out)
    account = args[args.index("-u") + 1]
    wait_alive(host, lambda: f"u'{account}'" in log.read_text(errors="replace"), f"{what} connected")


@pytest.fixture(scope="module")
def wan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wan]:
    tmp, logs, tls = run_folders(tmp_path_factory, "wan")
    site_file(tmp / "site.yaml")
    with contextlib.ExitStack() as stack:
        stack.callback(show_logs, logs)
        net = stack.enter_context(three_hosts({"building": {MQTT_HOST: SERVER_ON_BUILDING_LINK}}))
        center, building = net.server, net.building
        center_root, building_root = tmp / "center-root", tmp / "building-root"
        install(
            center,
            {
                "host": "pusat.binjai.test",
                "services": ["broker", "recorder"],
                "tls": {
                    "broker": {
                        "host": MQTT_HOST,
                        "bind": SERVER_ON_BUILDING_LINK,
                        "ca": str(tls / "ca.crt"),
                        "cert": str(tls / "mqtt.crt"),
                        "key": str(tls / "mqtt.key"),
                    }
                },
                "sites": {"room": str(tmp / "site.yaml")},
                "bridges": ["room"],
            },
            tmp,
            center_root,
        )
        bridge_secret = f"mqtt-bridge-{GATEWAY}"
        install(
            building,
            {
                "host": "gedung.binjai.test",
                "services": ["broker", "gateway"],
                "sites": {"room": str(tmp / "site.yaml")},
                "bridge": {"site": "room", "address": MQTT_HOST, "ca": str(tls / "ca.crt")},
                "secrets": {bridge_secret: Wan.secret(center_root, bridge_secret)},
            },
            tmp,
            building_root,
        )
        w = Wan(net, center_root, building_root, logs)
        broker(center, center_root, logs)
        influxd(center, tmp / "influxdb", logs, center_root)
        start_unit(center, unit("bcc-recorder@.service"), center_root, logs, instance="room")
        center_log = logs / "mosquitto-server.log"
        responses = logs / "center-responses.jsonl"
        portal_1 = w.mqtt_args(center_root, "portal", "portal_1")
        tap(center, portal_1, [T.response("lights")], responses, center_log, "responses at the center")
        broker(building, building_root, logs)
        building_log = logs / "mosquitto-building.log"
        # what the gateway publishes, on the building's broker (the WAN never touches this)
        tap(building, w.mqtt_args(building_root, "readonly"), [T.bridge_telemetry(GATEWAY)],
            logs / "telemetry.jsonl", building_log, "telemetry tap")  # fmt: skip
        ha = [*w.mqtt_args(building_root, "homeassistant"), "-v"]
        tap(building, ha, [T.all_set], logs / "building-commands.txt", building_log, "command tap")
        site = str(building_root / "etc/bcc/sites/room.yaml")
        sim = [VENV_BCC, "simulate", "--site", site, "--no-physics", "--change-every-s", "1"]
        sim += ["--port-base", str(PORT_BASE), "--control-port", str(SIM_CONTROL)]
        building.spawn("simulators", sim, logs / "sim.log")
        wait_alive(building, lambda: building.connects("127.0.0.1", SIM_CONTROL), "the simulators serve")
        start_unit(building, unit("bcc-gateway@.service"), building_root, logs, instance="room")
        yield w


def tapped(path: Path) -> list[tuple[int, dict[str, list[dict[str, Any]]]]]:
    """(bytes, body) of every bulk telemetry message tapped."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [(len(line) + 1, json.loads(line)) for line in lines if line.strip()]


def time_ns_of(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000) * 1_000_000


def gateway_process(host: Host) -> Any:
    return next(proc for what, proc, _log in host.processes if what.startswith("bcc-gateway@"))


@pytest.mark.timeout(300 + 4 * CUT_S)
def test_a_wan_cut_under_load_loses_nothing_and_runs_no_late_command(wan: Wan) -> None:
    net = wan.net
    # the bridge is up: the center sees the gateway online, owning its devices
    eventually_sync(
        lambda: wan.center_view().online(GATEWAY), timeout=60, what="the center sees the building"
    )
    assert wan.center_view().owner("lights") == GATEWAY
    # a command at the center for a device of another building never reaches this one (the bridge's ACL)
    wan.center_publish(T.set("lampu_lain"), {"relay_1": "ON", "ts": time.time()})
    # the load runs: every sensor has published
    eventually_sync(
        lambda: {d for _n, body in tapped(wan.logs / "telemetry.jsonl") for d in body} >= set(sensors()),
        timeout=60 + RATE / 10,
        what="every sensor published",
    )
    load_before = os.getloadavg()[0]

    cut_at, cut_ns = time.monotonic(), time.time_ns()
    net.set_building_link(False)
    try:
        # local control works during the cut: a command inside the building is executed
        local = {"relay_2": "ON", "transaction": "local-1", "ts": time.time()}
        argv = ["mosquitto_rr", *wan.mqtt_args(wan.building_root, "operator"), "-q", "1", "-W", "20"]
        argv += ["-t", T.set("lights"), "-e", T.response("lights"), "-m", json.dumps(local)]
        answer = json.loads(net.building.run(argv, timeout=30).stdout.strip().splitlines()[0])
        assert answer["transaction"] == "local-1" and answer["status"] == "ok", answer
        assert [w["address"] for w in wan.writes("lights")] == [1], wan.writes("lights")

        # the center sees the building offline: the bridge's last will, while the gateway's own
        # retained state (its last will is on the building's broker) still says online
        def offline_at_center() -> bool:
            view = wan.center_view()
            return view.links.get(GATEWAY) == "0" and view.offline_owner("lights") == GATEWAY

        eventually_sync(offline_at_center, timeout=CUT_S - 15, what="the center shows the building offline")
        detected_s = time.monotonic() - cut_at
        assert wan.center_view().states.get(GATEWAY) == "online"
        # a command sent at the center now is queued for the bridge's session and must never run
        wan.center_publish(
            T.set("lights"), {"relay_1": "ON", "transaction": STALE_COMMAND, "ts": time.time()}
        )
        # and one without ts (a hand-made mosquitto_pub): it has no age, so it is refused outright
        wan.center_publish(T.set("lights"), {"relay_3": "ON", "transaction": AGELESS_COMMAND})
        eventually_sync(
            lambda: time.monotonic() - cut_at >= CUT_S, timeout=CUT_S + 1, what="the cut's length"
        )
    finally:
        net.set_building_link(True)
        restored_at, restored_ns = time.monotonic(), time.time_ns()
    load_during = os.getloadavg()[0]

    eventually_sync(lambda: wan.center_view().online(GATEWAY), timeout=60, what="the center sees it back")
    back_s = time.monotonic() - restored_at

    def answers() -> dict[str, dict[str, Any]]:
        """The responses seen at the center, by transaction."""
        lines = (wan.logs / "center-responses.jsonl").read_text().splitlines()
        return {str(body.get("transaction")): body for body in map(json.loads, lines)}

    eventually_sync(
        lambda: {STALE_COMMAND, AGELESS_COMMAND} <= answers().keys(),
        timeout=60,
        what="the gateway answered the commands of the cut",
    )
    answered = answers()
    assert answered[STALE_COMMAND]["status"] == "stale", answered
    ageless = answered[AGELESS_COMMAND]
    assert ageless["status"] == "rejected" and ageless["error"].startswith("ts missing"), ageless
    # relay_2 only: relay_1 (stale) and relay_3 (no ts) never ran
    assert [w["address"] for w in wan.writes("lights")] == [1]
    commands = (wan.logs / "building-commands.txt").read_text()
    assert STALE_COMMAND in commands and AGELESS_COMMAND in commands, commands
    assert "lampu_lain" not in commands, commands

    # the states of the cut arrive: time to drain the building's queue
    cut_states = {
        (device, time_ns_of(s["ts"]))
        for _n, body in tapped(wan.logs / "telemetry.jsonl")
        for device, states in body.items()
        for s in states
        if cut_ns <= time_ns_of(s["ts"]) <= restored_ns
    }

    # one field per measurement (every state has them all): the sensors' counter, a relay
    fields = {"envsensor": "temperature", "relay8": "relay_1"}

    def count(where: str = "") -> int:
        """Points stored (cheap: InfluxDB counts; polled until the states arrive)."""
        return sum(
            row[1]
            for m, f in fields.items()
            for ser in wan.influx(f'SELECT count("{f}") FROM "raw".{m} {where}', timeout=60)
            for row in ser["values"]
        )

    in_cut = f"WHERE time >= {cut_ns} AND time <= {restored_ns}"
    eventually_sync(
        lambda: count(in_cut) >= len(cut_states), timeout=120 + CUT_S, what="the cut's states stored"
    )
    drained_s = time.monotonic() - restored_at

    # stop the load (the gateway: its last states are published), then compare everything
    gw = gateway_process(net.building)
    gw.send_signal(signal.SIGTERM)
    gw.wait(30)
    messages = tapped(wan.logs / "telemetry.jsonl")
    published = {
        (d, time_ns_of(s["ts"])) for _n, body in messages for d, states in body.items() for s in states
    }
    eventually_sync(lambda: count() >= len(published), timeout=120, what="every published state stored")
    rows = {
        m: wan.influx(f'SELECT "{f}" FROM "raw".{m} GROUP BY "device"', timeout=300)
        for m, f in fields.items()
    }
    points = {
        (ser["tags"]["device"], row[0]) for series in rows.values() for ser in series for row in ser["values"]
    }
    missing, extra = published - points, points - published
    # a counter value stored at two times: a state stored twice (a message delivered twice has the same
    # source time, so InfluxDB keeps one point: this is what a duplicate would look like), unless the
    # gateway itself published that value at two poll times (seen at the full size's start-up)
    stored_twice = {
        (ser["tags"]["device"], value)
        for ser in rows["envsensor"]
        for value, n in Counter(v for _t, v in ser["values"]).items()
        if n > 1
    }
    published_at = {  # (sensor, counter value, source time) of every published state
        (d, st["temperature"], st["ts"])
        for _n, body in messages
        for d, states in body.items()
        for st in states
        if d.startswith("env_")
    }
    times = Counter((d, value) for d, value, _ts in published_at)
    gateway_twice = {key for key, n in times.items() if n > 1}
    repeated = stored_twice - gateway_twice
    queued_bytes = sum(
        n
        for n, body in messages
        if any(cut_ns <= time_ns_of(s["ts"]) <= restored_ns for states in body.values() for s in states)
    )
    figures = {
        "cut_s": CUT_S,
        "rate_states_per_s": RATE,
        "published": len(published),
        "stored": len(points),
        "missing": len(missing),
        "extra": len(extra),
        "counter_values_twice": len(repeated),
        "counter_values_the_gateway_published_twice": len(gateway_twice),
        "states_during_cut": len(cut_states),
        "states_per_s_during_cut": round(len(cut_states) / CUT_S),
        "bytes_queued_during_cut": queued_bytes,
        "offline_at_center_after_s": round(detected_s, 1),
        "online_at_center_after_s": round(back_s, 1),
        "drained_after_s": round(drained_s, 1),
        "load_1min_before_during": [round(load_before, 2), round(load_during, 2)],
    }
    print("WAN figures: " + json.dumps(figures))
    assert not missing and not extra and not repeated, figures
    # the load ran during the cut (the gateway polls RATE states/s on an idle machine; on this shared
    # 2-core one it fell to ~480/s at RATE=1000: docs/performance.md)
    assert len(cut_states) >= 0.25 * RATE * CUT_S, figures
