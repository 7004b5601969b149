"""Two evaluators on the portal's database: one active, one standing by. The active one dies in the
middle of an alarm (no clean stop: its lease just stops being renewed); the standby takes over, keeps
the alarm active without raising it again, and clears it when the device recovers. The alarm's e-mails
to the on-duty operators are written once (by the active one only, none at the takeover) and the
portal's two workers send each once, in the recipient's language, through a real SMTP server."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from devices.loader import site_from_dict
from iot_gateway.alarms.config import AlarmsConfig, build_alarms_config
from iot_gateway.alarms.service import AlarmService, running_alarms
from iot_gateway.alarms.store import AlarmStore
from mosquitto import MosquittoProcess
from simulators import SiteSimulator
from tests.iot_gateway.alarms.test_service import WALL_OFFLINE, T, event_of, fast_rules
from tests.support.alarm_mail import add_staff, drain
from tests.support.gateway import gateway_config, probe, running_gateway, site_dict
from tests.support.smtp import smtp_server

LEASE_S = 1.5


def config(
    sim: SiteSimulator, broker: MosquittoProcess, tmp_path: Path, db: str, instance: str, account: int
) -> AlarmsConfig:
    """Each evaluator logs in with its own account of the role (the broker makes the username the
    client id, so two evaluators on one account would disconnect each other)."""
    loaded = sim.site_for_clients()
    site = site_from_dict(site_dict(loaded, broker), loaded.profiles)
    username = broker.account("alarms", account)
    env = {
        "BCC_MQTT_USERNAME": username,
        "BCC_MQTT_PASSWORD": broker.password(username),
        "BCC_ALARMS_DATABASE_URL": db,
    }
    return build_alarms_config(site, env, fast_rules(tmp_path), instance=instance, lease_s=LEASE_S)


@pytest.mark.broker_accounts(alarms=2)
async def test_the_standby_takes_over_without_raising_twice(
    mosquitto: MosquittoProcess, room_sim: SiteSimulator, tmp_path: Path, portal_db_url: str
) -> None:
    # no roster: every operator with an e-mail is on duty; the wall's offline alarm (high) goes to them
    add_staff(
        portal_db_url,
        [
            ("siti", "operator", "siti@binjai.test", "id"),
            ("budi", "operator", "budi@binjai.test", "en"),
            ("kepala", "admin", "kepala@binjai.test", "id"),
        ],
    )
    one = AlarmService(config(room_sim, mosquitto, tmp_path, portal_db_url, "one", 1))
    stop_one = asyncio.Event()
    async with (
        running_gateway(gateway_config(room_sim.site_for_clients(), mosquitto, breaker_max_backoff_s=1.0)),
        probe(mosquitto, "operator", subscribe=T.everything) as p,
    ):
        task = asyncio.create_task(one.run(stop_one))
        try:
            await asyncio.wait_for(one.became_active.wait(), 10)
            async with running_alarms(
                config(room_sim, mosquitto, tmp_path, portal_db_url, "two", 2), active=False
            ) as two:
                assert await p.wait_for(T.alarm_service("two"), lambda s: s == "standby") == "standby"
                assert await p.wait_for(T.alarm_service("one"), lambda s: s == "active") == "active"

                room_sim.device("wall").set_fault("no_answer")
                raised = await event_of(p, WALL_OFFLINE, "raised", timeout=15)
                assert raised["evaluator"] == "one"

                # "one" dies: no clean stop, no released lease
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                mark = p.mark()
                await asyncio.wait_for(two.became_active.wait(), LEASE_S * 3)
                assert (
                    await p.wait_for(T.alarm_service("two"), lambda s: s == "active", since=mark) == "active"
                )
                still = await p.wait_for(T.alarm_state(WALL_OFFLINE), since=mark)
                assert still["state"] == "active_unacked"

                room_sim.device("wall").set_fault("none")
                cleared = await event_of(p, WALL_OFFLINE, "cleared", timeout=10)
                assert cleared["evaluator"] == "two"
                # The outbox is at least once: an event "one" published but could not mark before it
                # died is published again by "two", with the same seq; consumers keep one per seq.
                by_seq = {e["seq"]: e for e in p.all(T.alarm_events) if e["alarm"] == WALL_OFFLINE}
                events = [(e["event"], e["evaluator"]) for _, e in sorted(by_seq.items())]
                assert events == [("raised", "one"), ("cleared", "two")]
        finally:
            if not task.done():
                stop_one.set()
                await task
    store = AlarmStore(portal_db_url)
    try:
        assert [e["event"] for e in store.history(WALL_OFFLINE)] == ["raised", "cleared"]
    finally:
        store.close()
    with smtp_server() as (inbox, port):
        rows = drain(portal_db_url, port)
        assert sorted((r.event, r.recipient) for r in rows) == [
            ("alarm_raised", "budi@binjai.test"),
            ("alarm_raised", "siti@binjai.test"),
        ]
        mail = {m["To"]: m["Subject"] for m in inbox.wait(2)}
    assert len(inbox.messages) == 2
    assert mail == {
        "siti@binjai.test": "[BCC TINGGI] Perangkat tidak terhubung",
        "budi@binjai.test": "[BCC HIGH] Device offline",
    }
