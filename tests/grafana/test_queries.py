"""Every query of every panel runs against real InfluxDB after a short simulated run and returns data."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime
from pathlib import Path

from bcc_contract.reports import category_keys
from grafana.build import dashboards
from iot_gateway.recorder.influxd import InfluxdProcess
from iot_gateway.recorder.service import running_recorder
from mosquitto import MosquittoProcess
from simulators.site import SiteSimulator
from tests.support.gateway import gateway_config, probe, running_gateway, with_ts
from tests.support.influx import influxql, recorder_config
from tests.support.wait import eventually


def _now(offset_s: float = 0) -> str:
    return datetime.fromtimestamp(time.time() + offset_s, UTC).isoformat().replace("+00:00", "Z")


def substitute(query: str, devices: list[str]) -> str:
    """What Grafana sends: macros expanded, multi-value variables as regex alternations."""
    q = query.replace("$timeFilter", "time > now() - 2h").replace("$__interval", "1s")
    q = q.replace("/^$site$/", "/^(bcc_room)$/").replace("/^$device$/", f"/^({'|'.join(devices)})$/")
    return q.replace("/^$category$/", f"/^({'|'.join(sorted(category_keys()))})$/")


async def test_every_panel_query_returns_a_series(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess, influxd: InfluxdProcess, tmp_path: Path
) -> None:
    loaded = room_sim.site_for_clients()
    rec_cfg = recorder_config(loaded, mosquitto, influxd, tmp_path, stats_interval_s=0.2)
    async with running_recorder(rec_cfg) as rec, probe(mosquitto) as portal:
        # bridge/health every 0.2 s: the health panels (poll latency, errors, rates) need several points.
        async with running_gateway(gateway_config(loaded, mosquitto, health_period_s=0.2)):
            for dev in loaded.site.devices:  # one state of every device, numbers included
                await portal.wait_for(
                    f"bcc/{dev.id}", lambda v: isinstance(v, dict) and len(v) > 2, timeout=10
                )
            mark = portal.mark()
            await portal.publish("bcc/lights_a/set", with_ts({"relay_2": "ON", "transaction": "grafana-1"}))
            await portal.wait_for("bcc/lights_a/response", since=mark)
            # Report events and backlog exactly as the portal publishes them (docs/influxdb.md).
            for i, category in enumerate(sorted(category_keys())):
                code = f"BJI-T-{i}"
                base = {"report": code, "category": category, "agency": "dinkes", "kecamatan": "binjai_kota"}
                await portal.publish("bcc/reports/events", {**base, "event": "created", "status": "new",
                    "resolution": None, "duration_s": None, "late": False, "ts": _now(-60)})  # fmt: skip
                await portal.publish("bcc/reports/events", {**base, "event": "closed", "status": "closed",
                    "resolution": ["resolved_direct", "needs_budget", "rejected"][i % 3],
                    "duration_s": 3600.0 * (i + 1), "late": i % 2 == 0, "ts": _now(-i)})  # fmt: skip
            backlog = {"ts": _now(), "open": {"new": 3, "verified": 1}, "by_category": {"kesehatan": 4},
                       "overdue_verification": 1, "overdue_response": 0}  # fmt: skip
            await portal.publish("bcc/reports/backlog", backlog, retain=True)
            # One alarm transition as `bcc alarms` publishes it (the real evaluator's path to these
            # panels: tests/iot_gateway/alarms/test_timeline.py).
            async with probe(mosquitto, "alarms", subscribe=None) as alarms:
                event = {"seq": 1, "alarm": "device_offline.wall", "event": "raised", "who": "system"}
                event |= {"state": "active_unacked", "severity": "high", "rule": "device_offline"}
                event |= {"device": "wall", "note": "", "value": "offline", "at": _now(-5), "evaluator": "t"}
                await alarms.publish("bcc/alarms/events", event)
            # Health that counts the command, then health spanning more than two 1 s intervals
            # (rates are derivatives between intervals).
            await portal.wait_for(
                "bcc/bridge/bcc_room/health", lambda v: "commands_ok" in v, since=mark, timeout=5
            )
            first = portal.mark()
            await asyncio.sleep(2.2)  # the observation window for the 0.2 s health period
            health = portal.all("bcc/bridge/bcc_room/health", since=first)
            assert len(health) >= 5 and any(h.get("poll_latency_ms_mean") for h in health), health[-1:]
        written = 'SELECT count("written") FROM "raw"."recorder"'
        await eventually(
            lambda: rec.intake.messages > 0 and bool(influxql(influxd.url, written, absent_ok=True)),
            timeout=10,
        )
        await asyncio.sleep(0.5)  # several 0.2 s recorder statistics (write-rate needs two)
        await rec.drain(10)
    devices = [d.id for d in loaded.site.devices] + ["bridge"]
    empty = []
    for name, dash in dashboards(loaded).items():
        for panel in dash["panels"]:
            for t in panel["targets"]:
                q = substitute(t["query"], devices)
                assert not re.search(r"\$(?!tag_)\w", q), q
                if not influxql(influxd.url, q):
                    empty.append(f"{name}: {panel['title']}: {q}")
    assert not empty, "\n".join(empty)
