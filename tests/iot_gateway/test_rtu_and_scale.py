"""The gateway on an RTU line (a real pty pair) and a reduced scale run (100 devices x 30 tags, 1 s)."""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import sys

import pytest

from devices.loader import load_profiles, site_from_dict
from mosquitto import MosquittoProcess
from simulators import start_site, synthetic
from tests.support.gateway import gateway_config, probe, running_gateway, with_ts
from tests.support.paths import ROOT

RTU_SITE = {
    "site": "rtu_line",
    "buses": [{"name": "line1", "type": "rtu", "port": "/dev/ttyUSB0", "baudrate": 19200, "timeout_ms": 300}],
    "devices": [
        {"id": "lights", "name": "Lampu", "profile": "relay8", "bus": "line1", "unit": 1},
        {
            "id": "env",
            "name": "Sensor",
            "profile": "envsensor",
            "bus": "line1",
            "unit": 2,
            "poll_s": {"default": 1},
        },
    ],
}


async def test_gateway_on_an_rtu_line(mosquitto: MosquittoProcess) -> None:
    profiles = load_profiles()
    loaded = site_from_dict(RTU_SITE, {k: profiles[k] for k in ("relay8", "envsensor")})
    sim = await start_site(loaded, physics=False)
    try:
        cfg = gateway_config(sim.site_for_clients(), mosquitto)
        hub_gap = sim.site_for_clients().site.bus("line1").frame_gap_s  # type: ignore[union-attr]
        assert abs(hub_gap - 3.5 * 10 / 19200) < 1e-9  # 3.5 characters of 10 bits at 19200 baud
        async with probe(mosquitto) as p, running_gateway(cfg) as gw:
            await p.wait_for("bcc/env", lambda s: s.get("temperature") == 24.5)
            await p.wait_for("bcc/lights", lambda s: s.get("relay_1") == "OFF")
            mark = p.mark()
            await p.publish("bcc/lights/set", with_ts({"relay_5": "ON", "transaction": "rtu"}))
            resp = await p.wait_for("bcc/lights/response", since=mark)
            assert resp["status"] == "ok", resp
            assert sim.device("lights").get_point("relay_5") is True
            # One transaction at a time, with the 3.5-character silence before every request.
            frames = list(gw.hubs["line1"].frame_log)
            assert len(frames) >= 8
            # (a reply may arrive in several chunks, but a request never follows a request)
            assert not any(a[1] and b[1] for a, b in itertools.pairwise(frames)), frames
            gaps = [b[0] - a[0] for a, b in itertools.pairwise(frames) if not a[1] and b[1]]
            assert gaps and min(gaps) >= hub_gap * 0.95, (min(gaps), hub_gap)
            # One dead unit on the line: the other keeps being polled.
            sim.device("lights").set_fault("no_answer")
            await p.wait_for("bcc/lights/availability", lambda v: v == "offline", since=mark, timeout=10)
            before = gw.devices["env"].polls_ok
            await sim.device("env").set_point("temperature", 26.0)
            await p.wait_for("bcc/env", lambda s: s.get("temperature") == 26.0, since=mark, timeout=5)
            assert gw.devices["env"].polls_ok > before
        assert [w.address for w in sim.device("lights").writes] == [4]
    finally:
        await sim.stop()


@pytest.mark.slow
async def test_reduced_scale_run_has_no_missed_deadline(mosquitto: MosquittoProcess) -> None:
    """100 devices x 30 tags at 1 s for 10 s (the full 500-device run is `bcc bench poll`): no missed
    deadline, no error, every device seen, no state published twice."""
    devices, tags = 100, 30
    sims = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators", "--synthetic", str(devices), "--tags", str(tags),
        stdout=asyncio.subprocess.PIPE, cwd=ROOT, limit=2**24,
    )  # fmt: skip
    try:
        assert sims.stdout is not None
        endpoints = json.loads(await asyncio.wait_for(sims.stdout.readline(), 60))["buses"]
        ports = [endpoints[f"bus_{i:04d}"]["port"] for i in range(devices)]
        loaded = site_from_dict(synthetic.site_dict(devices, ports), {"synthetic": synthetic.profile(tags)})
        cfg = gateway_config(loaded, mosquitto)
        async with probe(mosquitto, subscribe="bcc/+") as p, running_gateway(cfg) as gw:
            await asyncio.sleep(10)  # the measurement window
            seen = {str(m.topic) for m in p.messages}
            # Each poll's state once: the announcement after the connect republished the states the
            # devices had polled since, before the fix (Gateway._announce, DeviceRunner.republish).
            live = collections.Counter((str(m.topic), bytes(m.payload)) for m in p.messages if not m.retain)
            twice = sorted(topic for (topic, _), n in live.items() if n > 1)
            polls = sum(d.polls_ok for d in gw.devices.values())
            missed = sum(gw.metrics.missed_deadlines.labels(d)._value.get() for d in gw.devices)
            errors = sum(d.failures for d in gw.devices.values())
        assert missed == 0
        assert errors == 0
        assert not twice, f"the same state published twice: {twice}"
        assert seen >= {f"bcc/dev_{i:04d}" for i in range(devices)}
        assert polls >= devices * 9, polls  # about one poll per device per second
    finally:
        sims.terminate()
        await sims.wait()


async def test_gateway_rtu_over_tcp(mosquitto: MosquittoProcess) -> None:
    """RTU frames tunnelled over TCP (serial device servers in transparent mode): `framer: rtu`."""
    profiles = load_profiles()
    raw = {
        "site": "rtu_tcp",
        "buses": [{"name": "gw485", "type": "tcp", "host": "127.0.0.1", "port": 0, "framer": "rtu"}],
        "devices": [{"id": "lights", "name": "Lampu", "profile": "relay8", "bus": "gw485", "unit": 3}],
    }
    sim = await start_site(site_from_dict(raw, {"relay8": profiles["relay8"]}), physics=False, port=0)
    try:
        cfg = gateway_config(sim.site_for_clients(), mosquitto)
        assert cfg.loaded.site.bus("gw485").framer == "rtu"  # type: ignore[union-attr]
        async with probe(mosquitto) as p, running_gateway(cfg):
            await p.wait_for("bcc/lights", lambda s: s.get("relay_2") == "OFF")
            mark = p.mark()
            await p.publish("bcc/lights/set", with_ts({"relay_2": "ON", "transaction": "rtu-tcp"}))
            assert (await p.wait_for("bcc/lights/response", since=mark))["status"] == "ok"
            await p.wait_for("bcc/lights", lambda s: s.get("relay_2") == "ON", since=mark)
        assert sim.device("lights").get_point("relay_2") is True
    finally:
        await sim.stop()
