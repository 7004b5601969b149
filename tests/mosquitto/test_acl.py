"""The ACL matrix in docs/mqtt.md, checked cell by cell against a real Mosquitto running mosquitto/acl.

Negative results ("not delivered") are bounded without sleeping: after the probes, a control message is
published on a topic the receiver may read, by a client allowed to publish it. Mosquitto routes a QoS 1
message before acknowledging it and keeps each subscriber's queue in order, so once the control
arrives every earlier probe that was going to be delivered has been.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from bcc_contract.topics import Topics
from mosquitto import ROLES, MosquittoProcess
from tests.support.mqtt_probe import V5, V311, Probe
from tests.support.paths import ROOT

DOC = ROOT / "docs" / "mqtt.md"
PLACEHOLDERS = {
    "<device>": "probe_dev",
    "<node>": "bcc_probe_dev",
    "<client>": "probe_client",
    "<alarm>": "probe_rule.probe_dev",
    "<instance>": "probe_instance",
    "<gateway>": "probe_gw",
}
NOT_AUTHORIZED = 0x87
Table = dict[str, dict[str, frozenset[str]]]  # topic pattern -> role -> {"pub", "sub"}


def parse_acl_table(text: str) -> tuple[list[str], Table]:
    """Read the table between the acl-table markers: rows are topics, columns are roles."""
    block = text.split("<!-- acl-table:start -->")[1].split("<!-- acl-table:end -->")[0]
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")] for line in block.strip().splitlines()
    ]
    roles = rows[0][1:]
    table: Table = {}
    for row in rows[2:]:
        perms: dict[str, frozenset[str]] = {}
        for role, cell in zip(roles, row[1:], strict=True):
            words = frozenset(cell.split()) - {"–", "-"}
            assert words <= {"pub", "sub"}, f"unreadable cell {cell!r} in row {row[0]}"
            perms[role] = words
        table[row[0].strip("`")] = perms
    return roles, table


def concrete(pattern: str) -> str:
    return re.sub("<[a-z]+>", lambda m: PLACEHOLDERS[m.group(0)], pattern)


ROLES_IN_DOC, TABLE = parse_acl_table(DOC.read_text(encoding="utf-8"))


def test_table_lists_every_role_and_every_topic() -> None:
    t = Topics()
    topics = {
        t.bridge_state("<gateway>"),
        t.bridge_health("<gateway>"),
        t.bridge_devices("<gateway>"),
        t.bridge_telemetry("<gateway>"),
        t.bridge_sync("<gateway>", "<client>"),
        t.bridge_lease("<gateway>"),
        t.bridge_transactions("<gateway>"),
        t.bridge_link("<gateway>"),
        t.state("<device>"),
        t.availability("<device>"),
        t.set("<device>"),
        t.response("<device>"),
        t.report_events,
        t.report_backlog,
        t.discovery("<node>"),
        t.ha_status,
        t.alarm_state("<alarm>"),
        t.alarm_events,
        t.alarm_commands,
        t.alarm_results,
        t.alarm_service("<instance>"),
        t.recorder_status("<instance>"),
    }
    assert set(ROLES_IN_DOC) == set(ROLES)
    assert set(TABLE) == topics


@pytest.fixture
async def clients(
    mosquitto: MosquittoProcess, request: pytest.FixtureRequest
) -> AsyncIterator[dict[str, Probe]]:
    # A role is tested through its last account (portal: portal_8; render_acl gives all the same rules).
    probes = {
        r: Probe(mosquitto.host, mosquitto.port, a, mosquitto.password(a), request.param)
        for r in ROLES
        for a in [mosquitto.account(r, -1)]
    }
    try:
        for probe in probes.values():
            assert (await probe.connect()).value == 0
        yield probes
    finally:
        for probe in probes.values():
            await probe.close()


def first_role(pattern: str, right: str) -> str:
    return next(r for r in ROLES_IN_DOC if right in TABLE[pattern][r])


async def barrier(clients: dict[str, Probe], tag: str) -> list[str]:
    """Publish a control message per receiver on a topic it may read; return receivers that missed it."""
    control = {r: next(p for p in TABLE if "sub" in TABLE[p][r]) for r in clients}
    payload = f"barrier|{tag}".encode()
    for pattern in sorted(set(control.values())):
        assert (await clients[first_role(pattern, "pub")].publish(concrete(pattern), payload)).value == 0
    missed = []
    for role, pattern in control.items():
        if not await clients[role].wait_for_message(concrete(pattern), payload):
            missed.append(f"{role}: control message on {pattern} not delivered")
    return missed


@pytest.mark.parametrize("clients", [V311, V5], ids=["mqtt311", "mqtt5"], indirect=True)
async def test_acl_matrix_matches_docs(clients: dict[str, Probe]) -> None:
    protocol = next(iter(clients.values())).client.protocol
    mismatches: list[str] = []
    topics = [concrete(p) for p in TABLE]
    for role, probe in clients.items():
        # Mosquitto 2.0 checks `read` per delivered message: SUBSCRIBE itself is always granted.
        granted = await probe.subscribe(topics)
        mismatches += [
            f"{role}: SUBACK {rc} for {t}" for t, rc in zip(topics, granted, strict=True) if rc.value > 1
        ]

    # Publish rights: every role publishes to every topic; an observer that reads everything watches.
    observer = next(r for r in ROLES_IN_DOC if all("sub" in TABLE[p][r] for p in TABLE))
    for role, probe in clients.items():
        for pattern in TABLE:
            allowed = "pub" in TABLE[pattern][role]
            rc = await probe.publish(concrete(pattern), f"pub|{role}|{pattern}")
            # MQTT 3.1.1 cannot report a refusal: PUBACK is always success. MQTT 5 says 0x87.
            expected_rc = 0 if allowed or protocol == V311 else NOT_AUTHORIZED
            if rc.value != expected_rc:
                mismatches.append(f"{role} pub {pattern}: PUBACK {rc.value:#x}, expected {expected_rc:#x}")
    mismatches += await barrier(clients, "pub")
    for role in clients:
        for pattern in TABLE:
            delivered = clients[observer].got(concrete(pattern), f"pub|{role}|{pattern}".encode())
            if delivered != ("pub" in TABLE[pattern][role]):
                mismatches.append(
                    f"{role} pub {pattern}: docs={'pub' in TABLE[pattern][role]} broker={delivered}"
                )

    # Read rights: an allowed publisher sends once per topic, every role is subscribed to every topic.
    for pattern in TABLE:
        await clients[first_role(pattern, "pub")].publish(concrete(pattern), f"recv|{pattern}")
    mismatches += await barrier(clients, "recv")
    for role, probe in clients.items():
        for pattern in TABLE:
            received = probe.got(concrete(pattern), f"recv|{pattern}".encode())
            if received != ("sub" in TABLE[pattern][role]):
                mismatches.append(
                    f"{role} sub {pattern}: docs={'sub' in TABLE[pattern][role]} broker={received}"
                )
    assert mismatches == []


@pytest.mark.parametrize("protocol", [V311, V5], ids=["mqtt311", "mqtt5"])
@pytest.mark.parametrize("login", ["anonymous", "wrong_password", "unknown_user"])
async def test_bad_logins_are_refused(mosquitto: MosquittoProcess, protocol: int, login: str) -> None:
    username, password = {
        "anonymous": (None, None),
        "wrong_password": ("operator", mosquitto.password("operator") + "x"),
        "unknown_user": ("admin", mosquitto.password("operator")),
    }[login]
    probe = Probe(mosquitto.host, mosquitto.port, username, password, protocol)
    try:
        rc = await probe.connect()
        # paho maps the MQTT 3.1.1 return code 5 to the MQTT 5 reason code 0x87 (Not authorized).
        assert rc.value == NOT_AUTHORIZED
    finally:
        await probe.close()


async def test_retained_messages_are_filtered_by_read_rights(mosquitto: MosquittoProcess) -> None:
    gateway = Probe(mosquitto.host, mosquitto.port, "gateway", mosquitto.password("gateway"), V5)
    recorder = Probe(mosquitto.host, mosquitto.port, "recorder", mosquitto.password("recorder"), V5)
    try:
        await gateway.connect()
        await gateway.publish("bcc/probe_dev", b'{"ts": "retained"}', retain=True)
        await gateway.publish("homeassistant/device/bcc_probe_dev/config", b"{}", retain=True)
        await recorder.connect()
        assert [rc.value for rc in await recorder.subscribe(["#"])] == [1]
        await gateway.publish("bcc/bridge/state", b"control")
        assert await recorder.wait_for_message("bcc/bridge/state", b"control")
        assert recorder.got("bcc/probe_dev", b'{"ts": "retained"}')
        assert not any(t.startswith("homeassistant/") for t, _p, _r in recorder.messages)
    finally:
        await gateway.close()
        await recorder.close()


@pytest.mark.parametrize("protocol", [V311, V5], ids=["mqtt311", "mqtt5"])
async def test_oversized_payload_is_dropped(mosquitto: MosquittoProcess, protocol: int) -> None:
    """Above message_size_limit (256 KiB) a message is never delivered.

    MQTT 3.1.1: PUBACK success and the connection stays (silent drop). MQTT 5: Mosquitto 2.0.11 answers
    PUBACK reason 0x95, which MQTT 5 does not allow in a PUBACK, so paho drops the connection with a
    protocol error (0x82). Publishers must keep payloads below the limit themselves.
    """
    gateway = Probe(mosquitto.host, mosquitto.port, "gateway", mosquitto.password("gateway"), protocol)
    reader = Probe(mosquitto.host, mosquitto.port, "readonly", mosquitto.password("readonly"), V5)
    try:
        await gateway.connect()
        await reader.connect()
        await reader.subscribe(["bcc/#"])
        info = gateway.client.publish("bcc/probe_dev", b"x" * (256 * 1024 + 1), qos=1)
        assert await gateway.wait(lambda: info.mid in gateway.pubacks or gateway.disconnected is not None)
        if protocol == V311:
            assert gateway.pubacks[info.mid].value == 0
            assert (await gateway.publish("bcc/bridge/state", b"control")).value == 0
        else:
            assert gateway.disconnected is not None and gateway.disconnected.value == 0x82
            control = Probe(mosquitto.host, mosquitto.port, "gateway", mosquitto.password("gateway"), V5)
            await control.connect()
            await control.publish("bcc/bridge/state", b"control")
            await control.close()
        assert await reader.wait_for_message("bcc/bridge/state", b"control")
        assert not any(t == "bcc/probe_dev" for t, _p, _r in reader.messages)
    finally:
        await gateway.close()
        await reader.close()
