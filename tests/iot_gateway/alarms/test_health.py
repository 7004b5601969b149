"""Alarm health (EEMUA 191, docs/alarms.md "Alarm health") on the portal's database (SQLite and
PostgreSQL) with a fake clock: the gateway stays offline for 25 hours (a standing alarm), a CO2 reading
without deadband or delays flips around its limit every 5 s for a minute (a chattering alarm), an
operator acknowledges; the evaluator's Prometheus metrics (over HTTP) and the portal's staff page show
the same numbers."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from bcc_contract.alarm_health import ActiveAlarm, HistoryEvent, chattering, compute_health
from iot_gateway.alarms.service import AlarmService
from iot_gateway.health import HealthServer
from portal.main import create_app
from tests.iot_gateway.alarms.test_notify import GATEWAY, START, Clock, alarms_config, step_at
from tests.support.portal_app import FakeClock, make_settings, staff_client

NOISY = "co2_noisy.env_front"
LATER = START + 25 * 3600  # the chatter starts 25 hours after the gateway went offline


def section(html: str, table_id: str) -> str:
    found = re.search(rf'<table[^>]*id="{table_id}".*?</table>', html, re.S)
    assert found is not None, table_id
    return found.group(0)


async def test_chattering_and_standing_alarms_on_the_metrics_and_the_page(
    tmp_path: Path, portal_db_url: str
) -> None:
    clock = Clock(START)
    service = AlarmService(alarms_config(tmp_path, portal_db_url), clock=clock)
    server = HealthServer(service.metrics.registry, service.health_status)
    port = await server.start("127.0.0.1", 0)
    try:
        await service.step()
        await service.handle(
            service.topics.bridge_state(service.config.loaded.site.gateway_id), b"offline", False
        )
        await step_at(service, clock, START + 10)  # raised: it stays active from now on
        for n in range(12):  # 1200, 900, 1200, ... ppm every 5 s: 12 transitions within 55 s
            await step_at(service, clock, LATER + 5 * n)
            co2 = 1200 if n % 2 == 0 else 900
            await service.handle(service.topics.state("env_front"), orjson.dumps({"co2": co2}), False)
        ack = {"alarm": GATEWAY, "action": "ack", "by": "siti", "note": "genset"}
        await service.handle(service.topics.alarm_commands, orjson.dumps(ack), False)
        now = LATER + 120
        await step_at(service, clock, now)  # the metrics are recomputed (more than 60 s since the last)

        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
        metric = service.metrics.registry.get_sample_value
        assert metric("bcc_alarms_chattering") == 1
        assert metric("bcc_alarms_chattering_transitions", {"alarm": NOISY}) == 12
        assert metric("bcc_alarms_standing") == 1
        standing = metric("bcc_alarms_standing_hours", {"alarm": GATEWAY, "severity": "critical"})
        assert standing == pytest.approx((now - START - 10) / 3600, abs=0.05)
        # the gateway's raise is older than the 24-hour window: the six CO2 raises are what counts
        assert metric("bcc_alarms_raised_24h") == 6
        assert metric("bcc_alarms_frequent_raised", {"alarm": NOISY}) == 6
        assert metric("bcc_alarms_frequent_raised", {"alarm": GATEWAY}) is None
        assert metric("bcc_alarms_per_hour") == pytest.approx(6 / 24, abs=0.001)
        assert metric("bcc_alarms_peak_hour") == 6
        assert metric("bcc_alarms_acked_per_hour", {"operator": "siti"}) == pytest.approx(1 / 24, abs=0.001)
        assert f'bcc_alarms_chattering_transitions{{alarm="{NOISY}"}} 12.0' in text
    finally:
        await server.close()
        service.store.close()

    # the portal's staff page, on the same database at the same moment
    app = create_app(
        make_settings(portal_db_url, tmp_path), clock=FakeClock(datetime.fromtimestamp(now, UTC)).now
    )
    with TestClient(app):
        operator = staff_client(app, "operator")
        page = operator.get("/konsol/kesehatan-alarm")
        assert page.status_code == 200
        html = page.text
        assert re.search(r'id="raised">6<', html) and re.search(r'id="per-hour">0.25<', html)
        assert re.search(rf"<td>{NOISY}</td><td>12</td>", section(html, "chattering-list"))
        assert GATEWAY not in section(html, "chattering-list")
        assert re.search(rf"<td>{GATEWAY}</td><td>critical</td><td>25.0</td>", section(html, "standing-list"))
        assert re.search(rf"<td>{NOISY}</td><td>6</td>", section(html, "frequent-list"))
        assert re.search(r"<td>siti</td><td>0.04</td>", section(html, "acked"))
        viewer = staff_client(app, "viewer")
        assert viewer.get("/konsol/kesehatan-alarm").status_code == 403
        operator.close()
        viewer.close()


def test_chattering_means_more_than_three_transitions_within_a_minute() -> None:
    def events(*times: float) -> list[HistoryEvent]:
        kinds = ("raised", "cleared")
        return [HistoryEvent(NOISY, kinds[n % 2], t) for n, t in enumerate(times)]

    assert chattering(events(0, 10, 20)) == []  # three
    assert chattering(events(0, 10, 20, 60)) == [(NOISY, 4)]  # four within 60 s
    assert chattering(events(0, 10, 20, 60.5)) == []  # never four within 60 s
    # acknowledgements and shelving are not transitions of the condition
    acks = [HistoryEvent(NOISY, "acked", t) for t in (1, 2, 3, 4, 5)]
    assert chattering([*events(0, 10, 20), *acks]) == []
    health = compute_health(events(0, 10, 20, 30, 40), [ActiveAlarm(GATEWAY, "critical", -86401)], 50)
    assert health.raised == 3 and health.chattering == [(NOISY, 5)]
    assert health.standing == [(GATEWAY, "critical", 24.0)]
