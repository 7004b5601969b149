"""The mosquitto package: secrets, password file, rendered config, restart, CLI, the amqtt fallback."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import ssl
import stat
import subprocess
from pathlib import Path

import pytest

import mosquitto as broker
from bcc_common.net import free_port
from mosquitto import (
    ROLES,
    BrokerError,
    EmbeddedBroker,
    MissingSecretsError,
    MosquittoProcess,
    cli,
    mqtt_login,
    read_role_secrets,
    render_config,
    write_password_file,
)
from mosquitto.accounts import render_acl
from tests.support.mqtt_probe import V5, V311, Probe
from tests.support.wait import eventually


def test_read_role_secrets_reports_every_missing_role(tmp_path: Path) -> None:
    (tmp_path / "mqtt_portal").write_text("portal-secret-from-file\n")
    env = {"BCC_MQTT_PASSWORD_GATEWAY": "gateway-secret-env", "BCC_MQTT_PASSWORD_OPERATOR": "short"}
    with pytest.raises(MissingSecretsError) as err:
        read_role_secrets(ROLES, env=env, secrets_dir=tmp_path)
    assert [p.split(":")[0] for p in err.value.problems] == [
        "recorder",
        "operator",
        "readonly",
        "homeassistant",
        "alarms",
    ]
    found = read_role_secrets(["gateway", "portal"], env=env, secrets_dir=tmp_path)
    assert found == {"gateway": "gateway-secret-env", "portal": "portal-secret-from-file"}


def test_password_file_is_hashed_and_private(tmp_path: Path) -> None:
    path = write_password_file(
        tmp_path / "passwd", {"gateway": "a-long-secret-1", "portal": "a-long-secret-2"}
    )
    text = path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "a-long-secret" not in text
    assert [line.split(":")[0] for line in text.splitlines()] == ["gateway", "portal"]
    assert all(line.split(":", 1)[1].startswith("$7$") for line in text.splitlines())  # sha512-pbkdf2
    assert list(tmp_path.iterdir()) == [path]
    with pytest.raises(BrokerError):
        write_password_file(tmp_path / "bad", {"bad:user": "x" * 20})


def test_rendered_config_keeps_production_security(tmp_path: Path) -> None:
    conf = render_config(tmp_path, port=18999, password_path=tmp_path / "passwd")
    lines = conf.read_text().splitlines()
    for setting in (
        "allow_anonymous false",
        "per_listener_settings false",
        "persistence true",
        "message_size_limit 262144",
        "max_queued_messages 10000",
    ):
        assert setting in lines
    assert [line for line in lines if line.startswith("listener")] == ["listener 18999 127.0.0.1"]
    assert f"acl_file {tmp_path / 'acl'}" in lines  # the packaged ACL, copied next to the config
    assert (tmp_path / "acl").read_text() == render_acl(broker.DEFAULT_ACL.read_text())  # every account
    assert "user operator" in (tmp_path / "acl").read_text()
    bad = tmp_path / "bad.conf"
    bad.write_text("allow_anonymous true\nper_listener_settings false\nlistener 1883\n")
    with pytest.raises(BrokerError, match="allow_anonymous"):
        render_config(tmp_path / "x", port=1, password_path=tmp_path / "passwd", template=bad)


async def test_restart_keeps_port_and_retained_state(mosquitto: MosquittoProcess) -> None:
    port = mosquitto.port
    gateway = Probe(mosquitto.host, port, "gateway", mosquitto.password("gateway"), V5)
    await gateway.connect()
    await gateway.publish("bcc/bridge/bcc_room/state", b"online", retain=True)
    await gateway.close()
    await mosquitto.restart()
    assert mosquitto.port == port
    reader = Probe(mosquitto.host, port, "recorder", mosquitto.password("recorder"), V5)
    try:
        await reader.connect()
        await reader.subscribe(["bcc/bridge/bcc_room/state"])
        assert await reader.wait_for_message("bcc/bridge/bcc_room/state", b"online")
    finally:
        await reader.close()
    assert await mqtt_login(mosquitto.host, port, "gateway", "wrong-password") == 5  # 3.1.1 "not authorized"


def _cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bcc broker")
    cli.add_arguments(parser)
    return parser.parse_args(argv)


def test_cli_passwd_exits_2_listing_missing_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for role in ROLES:
        monkeypatch.delenv(f"BCC_MQTT_PASSWORD_{role.upper()}", raising=False)
    monkeypatch.setenv("BCC_MQTT_PASSWORD_GATEWAY", "gateway-secret-env")
    assert cli.run(_cli(["passwd", "--out", str(tmp_path / "passwd")])) == 2
    err = capsys.readouterr().err
    assert all(role in err for role in ROLES if role != "gateway")
    assert not (tmp_path / "passwd").exists()
    for role in ROLES:
        monkeypatch.setenv(f"BCC_MQTT_PASSWORD_{role.upper()}", f"{role}-secret-0123")
    assert cli.run(_cli(["passwd", "--out", str(tmp_path / "passwd")])) == 0
    assert cli.run(_cli(["config", "--out", str(tmp_path / "conf"), "--port", "18998"])) == 0
    assert "listener 18998 127.0.0.1" in (tmp_path / "conf" / "mosquitto.conf").read_text()


async def test_embedded_broker_enforces_users_and_acl(tmp_path: Path) -> None:
    embedded = EmbeddedBroker()
    await embedded.start(tmp_path)
    probes: list[Probe] = []
    try:
        anonymous = Probe(embedded.host, embedded.port, None, None, V311)
        probes.append(anonymous)
        assert (await anonymous.connect()).is_failure
        reader, operator, gateway = (
            Probe(embedded.host, embedded.port, r, embedded.credentials[r], V311)
            for r in ("readonly", "operator", "gateway")
        )
        probes += [reader, operator, gateway]
        for probe in (reader, operator, gateway):
            assert (await probe.connect()).value == 0
        await reader.subscribe(["bcc/#"])
        await operator.publish("bcc/probe_dev", b"denied")  # operator may not publish state
        await operator.publish("bcc/probe_dev/set", b"{}")
        assert await reader.wait_for_message("bcc/probe_dev/set", b"{}")
        await gateway.publish("bcc/probe_dev", b"allowed")
        assert await reader.wait_for_message("bcc/probe_dev", b"allowed")
        assert not reader.got("bcc/probe_dev", b"denied")
    finally:
        for probe in probes:
            await probe.close()
        await embedded.stop()


def _self_signed_certificate(tls: Path) -> Path:
    """ca.crt, server.crt and server.key for CN=127.0.0.1 (the certificate is its own CA)."""
    tls.mkdir()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-keyout", str(tls / "server.key"), "-out", str(tls / "server.crt")],
        check=True, capture_output=True,
    )  # fmt: skip
    (tls / "ca.crt").write_bytes((tls / "server.crt").read_bytes())
    return tls


async def test_production_config_starts_with_both_listeners(tmp_path: Path) -> None:
    """mosquitto/mosquitto.conf itself, only its paths and ports changed, serves plain MQTT and TLS."""
    binary = broker.find_mosquitto()
    if binary is None:
        pytest.fail("mosquitto binary not installed (scripts/sysdeps.sh installs it)")
    tls = _self_signed_certificate(tmp_path / "tls")
    secrets_ = broker.generate_demo_secrets()
    write_password_file(tmp_path / "passwd", secrets_)
    (tmp_path / "acl").write_bytes(broker.DEFAULT_ACL.read_bytes())
    plain, tls_port = free_port(), free_port()
    text = broker.PRODUCTION_CONF.read_text()
    for old, new in [
        ("/etc/mosquitto/bcc", str(tmp_path)),
        ("/var/lib/mosquitto/", f"{tmp_path}/"),
        ("user mosquitto", f"user {getpass.getuser()}"),
        ("listener 1883 127.0.0.1", f"listener {plain} 127.0.0.1"),
        ("listener 8883", f"listener {tls_port} 127.0.0.1"),
    ]:
        assert old in text
        text = text.replace(old, new)
    (tmp_path / "mosquitto.conf").write_text(text)
    with (tmp_path / "log").open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            binary, "-c", str(tmp_path / "mosquitto.conf"), stderr=log
        )
    try:

        async def accepts_login() -> bool:
            with contextlib.suppress(OSError):
                return await mqtt_login("127.0.0.1", plain, "readonly", secrets_["readonly"]) == 0
            return False

        try:
            await eventually(accepts_login, 5, step=0.005, what="mosquitto accepting a login")
        except AssertionError as err:
            pytest.fail(f"{err}\n{(tmp_path / 'log').read_text()}")
        context = ssl.create_default_context(cafile=str(tls / "ca.crt"))
        context.check_hostname = False
        _reader, writer = await asyncio.open_connection("127.0.0.1", tls_port, ssl=context)
        assert writer.get_extra_info("ssl_object").version() in ("TLSv1.2", "TLSv1.3")
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
    finally:
        proc.terminate()
        await proc.wait()


async def test_process_with_tls_listener(tmp_path: Path) -> None:
    if broker.find_mosquitto() is None:
        pytest.fail("mosquitto binary not installed (scripts/sysdeps.sh installs it)")
    tls = _self_signed_certificate(tmp_path / "tls")
    files = broker.TlsFiles(free_port(), tls / "ca.crt", tls / "server.crt", tls / "server.key")
    async with MosquittoProcess(tmp_path / "broker", tls=files) as process:
        context = ssl.create_default_context(cafile=str(files.cafile))
        context.check_hostname = False
        _reader, writer = await asyncio.open_connection(process.host, files.port, ssl=context)
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
