"""No account can take over another's connection (#15 defect 5): the broker makes the client id the
username (``use_username_as_clientid`` on every listener), and each process has its own account."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bcc_contract.accounts import account_names, parse_account_counts
from mosquitto import DEFAULT_ACL, PRODUCTION_CONF, BrokerError, MosquittoProcess, cli, render_config
from mosquitto.accounts import account_passwords, render_acl
from portal.config import PortalMqttSettings
from portal.mqtt import MqttAccountsExhausted, MqttEventSink
from simulators.site import SiteSimulator
from tests.support.gateway import gateway_config, probe, running_gateway, with_ts
from tests.support.mqtt_probe import V5, V311, Probe


@pytest.mark.parametrize("protocol", [V5, V311])
async def test_readonly_with_the_gateways_client_id_does_not_disconnect_it(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess, protocol: int
) -> None:
    """The reproduction of the issue: read the gateway's id from bcc/bridge/bcc_room/sync/<id>, connect as
    readonly with it. Before the fix Mosquitto disconnected the gateway (the id was taken over)."""
    cfg = gateway_config(room_sim.site_for_clients(), mosquitto)
    async with (
        probe(mosquitto, role="readonly", subscribe="bcc/bridge/bcc_room/sync/#") as watcher,
        running_gateway(cfg) as gw,
    ):
        client_id = gw.link.client_id
        await watcher.wait_for(f"bcc/bridge/bcc_room/sync/{client_id}")  # what any reader learns
        connects = gw.metrics.mqtt_reconnects._value.get()
        attacker = Probe(
            mosquitto.host, mosquitto.port, "readonly", mosquitto.password("readonly"), protocol, client_id
        )
        try:
            assert (await attacker.connect()).value == 0  # readonly may connect, as itself
            # The gateway keeps its connection: a command sent now is executed and answered.
            async with probe(mosquitto, role="operator", subscribe="bcc/lights_a/response") as op:
                await op.publish(
                    "bcc/lights_a/set", with_ts({"relay_2": "ON", "transaction": "after-attack"})
                )
                resp = await op.wait_for("bcc/lights_a/response")
                assert resp["status"] == "ok" and resp["transaction"] == "after-attack", resp
            assert gw.link.connected.is_set()
            assert gw.metrics.mqtt_reconnects._value.get() == connects, "the gateway was disconnected"
            assert attacker.disconnected is None  # nor was the readonly client: they never collide
        finally:
            await attacker.close()
    log = mosquitto.log_path.read_text(errors="replace")
    assert f"as readonly (p{5 if protocol == V5 else 2}" in log  # the broker used the username as id


async def test_two_accounts_of_one_role_stay_connected_one_account_twice_does_not(
    mosquitto: MosquittoProcess,
) -> None:
    """Two portal workers (portal_1, portal_2) coexist; a second process on one account replaces the
    first, which is why every process needs its own account."""
    password = mosquitto.password("portal")
    first, second, again = (
        Probe(mosquitto.host, mosquitto.port, name, password, V5)
        for name in ("portal_1", "portal_2", "portal_1")
    )
    try:
        for p in (first, second):
            assert (await p.connect()).value == 0
        assert first.disconnected is None and second.disconnected is None
        assert (await again.connect()).value == 0
        assert await first.wait(lambda: first.disconnected is not None), "the same account takes over"
        assert second.disconnected is None
    finally:
        for p in (first, second, again):
            await p.close()


async def test_portal_workers_claim_distinct_accounts(
    mosquitto: MosquittoProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path))
    password = mosquitto.password("portal")
    settings = PortalMqttSettings(host=mosquitto.host, port=mosquitto.port, password=password, accounts=2)
    sinks: list[MqttEventSink] = []

    def sink(s: PortalMqttSettings = settings) -> MqttEventSink:
        sinks.append(MqttEventSink(s))
        return sinks[-1]

    try:
        a, b = sink(), sink()
        assert (a.account, b.account) == ("portal_1", "portal_2")
        with pytest.raises(MqttAccountsExhausted, match="all 2 MQTT accounts"):
            sink()
        a.start()
        b.start()
        assert await asyncio.to_thread(a.connected.wait, 5) and await asyncio.to_thread(b.connected.wait, 5)
        a.stop()  # a worker that ends frees its account for the one that replaces it
        c = sink()
        assert c.account == "portal_1"
        c.start()
        assert await asyncio.to_thread(c.connected.wait, 5)
        assert b.connected.is_set()  # no account collided with another
        one = PortalMqttSettings(host=mosquitto.host, port=mosquitto.port, password=password, accounts=1)
        assert sink(one).account == "portal"
    finally:
        for s in sinks:
            s.stop()
            # paho closes the socket pair that wakes its loop only in __del__ (ResourceWarning otherwise)
            s.client._reset_sockets()


def test_account_names_and_counts() -> None:
    assert account_names("gateway", 1) == ["gateway"]
    assert account_names("portal", 3) == ["portal_1", "portal_2", "portal_3"]
    assert parse_account_counts([]) == {"portal": 8}
    assert parse_account_counts(["portal=2", "readonly=3"]) == {"portal": 2, "readonly": 3}
    with pytest.raises(ValueError) as err:
        parse_account_counts(["ghost=2", "portal=0", "readonly=x", "operator=٣"])
    assert str(err.value).count("expected ROLE=N") == 3 and "between 1 and 64" in str(err.value)
    assert account_passwords({"portal": "p" * 12, "gateway": "g" * 12}, {"portal": 2}) == {
        "portal_1": "p" * 12,
        "portal_2": "p" * 12,
        "gateway": "g" * 12,
    }


def test_rendered_acl_gives_every_account_its_roles_rules() -> None:
    template = DEFAULT_ACL.read_text(encoding="utf-8")
    rendered = render_acl(template, {"portal": 3})

    def rules(text: str, user: str) -> list[str]:
        lines = text.splitlines()
        start = lines.index(f"user {user}") + 1
        end = next((i for i in range(start, len(lines)) if lines[i].startswith("user ")), len(lines))
        return [ln for ln in lines[start:end] if ln.startswith("topic ")]

    portal = rules(template, "portal")
    assert portal and all(rules(rendered, f"portal_{k}") == portal for k in (1, 2, 3))
    assert "user portal\n" not in rendered
    assert rules(rendered, "gateway") == rules(template, "gateway")


def test_every_listener_binds_the_client_id_to_the_username(tmp_path: Path) -> None:
    production = PRODUCTION_CONF.read_text(encoding="utf-8").splitlines()
    listeners = [i for i, ln in enumerate(production) if ln.startswith("listener ")]
    assert len(listeners) == 2
    for i in listeners:
        section = production[i + 1 : next((j for j in listeners if j > i), len(production))]
        assert "use_username_as_clientid true" in section, production[i]
    conf = render_config(tmp_path / "r", port=18998, password_path=tmp_path / "passwd")
    assert conf.read_text().splitlines()[-1] == "use_username_as_clientid true"
    bad = tmp_path / "bad.conf"
    bad.write_text(
        "allow_anonymous false\nper_listener_settings false\nlistener 1883\nlistener 8883\n"
        "use_username_as_clientid true\n"
    )
    with pytest.raises(BrokerError, match="listener 1883: use_username_as_clientid true"):
        render_config(tmp_path / "b", port=18997, password_path=tmp_path / "passwd", template=bad)


def test_broker_cli_writes_every_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for role in ("gateway", "recorder", "portal", "operator", "readonly", "homeassistant", "alarms"):
        monkeypatch.setenv(f"BCC_MQTT_PASSWORD_{role.upper()}", f"{role}-secret-0123456")
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert (
        cli.run(parser.parse_args(["passwd", "--out", str(tmp_path / "passwd"), "--accounts", "portal=3"]))
        == 0
    )
    users = [ln.split(":")[0] for ln in (tmp_path / "passwd").read_text().splitlines()]
    assert users == [
        "gateway",
        "recorder",
        "portal_1",
        "portal_2",
        "portal_3",
        "operator",
        "readonly",
        "homeassistant",
        "alarms",
    ]
    assert cli.run(parser.parse_args(["acl", "--out", str(tmp_path / "acl"), "--accounts", "portal=3"])) == 0
    assert "user portal_3\n" in (tmp_path / "acl").read_text()
    assert oct((tmp_path / "acl").stat().st_mode & 0o777) == "0o640"
    assert cli.run(parser.parse_args(["acl", "--out", str(tmp_path / "x"), "--accounts", "portal=99"])) == 2


def test_portal_refuses_more_workers_than_mqtt_accounts(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "BCC_PORTAL_SECRET_KEY": "k" * 40,
        "BCC_PORTAL_DATABASE_URL": f"sqlite:///{tmp_path / 'portal.db'}",
        "BCC_PORTAL_MQTT_HOST": "127.0.0.1",
        "BCC_MQTT_PASSWORD_PORTAL": "p" * 16,
        "BCC_PORTAL_MQTT_ACCOUNTS": "2",
    }
    done = subprocess.run(
        [sys.executable, "-m", "bcc", "portal", "serve", "--workers", "3", "--port", "1"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "--workers 3: each worker needs its own MQTT account and there are 2" in done.stderr
