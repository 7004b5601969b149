"""The shipped systemd units: systemd itself accepts them, their command lines parse with the real
``bcc`` parser, and the environment they set is what the services read."""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import pytest

from bcc.cli import build_parser
from devices.loader import load_site
from iot_gateway.config import load_gateway_config
from iot_gateway.recorder.config import load_recorder_config
from iot_gateway.recorder.influx_admin import plan
from portal.config import Settings
from tests.support.paths import ROOT
from tests.support.units import (
    INSTALLED_BCC,
    PORTAL_ENV_EXAMPLE,
    UNIT_DIR,
    VENV_BCC,
    Unit,
    environment_file,
    shipped_units,
    unit,
)

SITE = "room"  # the instance the template units are verified and parsed as


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail("systemd-analyze not installed: run scripts/sysdeps.sh (Debian package: systemd)")
    return found


def verify(folder: Path, names: list[str]) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze verify`` on the units in ``folder``; systemd reports problems it "ignores"
    (unknown keys, bad values) only on stderr, so callers require an empty stderr as well."""
    return subprocess.run(
        [systemd_analyze(), "verify", "--man=no", *(str(folder / n) for n in names)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def installable_copy(folder: Path, edit: dict[str, tuple[str, str]] | None = None) -> list[str]:
    """The units copied to ``folder`` with the installed ``bcc`` replaced by this venv's (so systemd
    finds an executable), templates instantiated as ``@room``; ``edit`` replaces text in one unit."""
    names = []
    for path in sorted(UNIT_DIR.iterdir()):
        text = path.read_text(encoding="utf-8")
        if edit and path.name in edit:
            old, new = edit[path.name]
            assert old in text, (path.name, old)
            text = text.replace(old, new)
        text = text.replace(INSTALLED_BCC, VENV_BCC)
        name = path.name.replace("@.", f"@{SITE}.")
        (folder / name).write_text(text, encoding="utf-8")
        names.append(name)
    return names


def test_shipped_units_are_the_expected_ones() -> None:
    assert sorted(u.name for u in shipped_units()) == [
        "bcc-gateway@.service",
        "bcc-influx-provision@.service",
        "bcc-portal.service",
        "bcc-recorder@.service",
    ]


def test_systemd_analyze_verify_accepts_every_unit(tmp_path: Path) -> None:
    result = verify(tmp_path, installable_copy(tmp_path))
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


@pytest.mark.parametrize(
    ("name", "old", "new", "complaint"),
    [
        ("bcc-portal.service", "KillMode=mixed", "KillMode=mixd", "kill mode"),
        ("bcc-gateway@.service", "ProtectHome=yes", "ProtectHomes=yes", "Unknown key"),
        (
            "bcc-recorder@.service",
            f"ExecStart={INSTALLED_BCC}",
            "ExecStart=/nonexistent/bcc",
            "not executable",
        ),
    ],
)
def test_verify_catches_a_broken_unit(tmp_path: Path, name: str, old: str, new: str, complaint: str) -> None:
    """The check above can fail: one typo in one unit is reported."""
    result = verify(tmp_path, installable_copy(tmp_path, {name: (old, new)}))
    assert complaint in result.stderr, result.stderr


# systemd's own exposure score (0 = locked down, 10 = unprotected), times ten; the units score 1.8-2.1
EXPOSURE_LIMIT = 25


def security(folder: Path, name: str) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze security`` on a unit file; it fails above ``EXPOSURE_LIMIT``."""
    return subprocess.run(
        [systemd_analyze(), "security", "--offline=yes", f"--threshold={EXPOSURE_LIMIT}", "--no-pager",
         str(folder / name)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def test_every_unit_is_hardened(tmp_path: Path) -> None:
    for name in installable_copy(tmp_path):
        result = security(tmp_path, name)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr


def test_security_check_fails_without_the_hardening(tmp_path: Path) -> None:
    names = installable_copy(tmp_path)
    name = next(n for n in names if n.startswith("bcc-portal"))
    hardening = ("Protect", "Private", "Restrict", "DynamicUser", "Capability", "SystemCall", "NoNewPriv")
    text = (tmp_path / name).read_text(encoding="utf-8").splitlines()
    (tmp_path / name).write_text("\n".join(t for t in text if not t.startswith(hardening)) + "\n")
    assert security(tmp_path, name).returncode != 0


def parse(argv: list[str]) -> argparse.Namespace:
    """``argv`` (after the program) through the real ``bcc`` parser; a renamed or removed flag fails."""
    try:
        return build_parser(argv).parse_args(argv)
    except SystemExit as exit_:  # argparse printed the problem to stderr
        raise AssertionError(f"bcc does not accept: {' '.join(argv)}") from exit_


def bcc_commands(u: Unit) -> list[list[str]]:
    lines = [argv for key in ("ExecStartPre", "ExecStart", "ExecStartPost") for argv in u.commands(key, SITE)]
    return [argv[1:] for argv in lines if argv[0] == INSTALLED_BCC]


def test_every_bcc_command_line_parses_with_the_real_parser() -> None:
    seen = 0
    for u in shipped_units():
        for argv in bcc_commands(u):
            parse(argv)
            seen += 1
    assert seen == 7  # check-config + run for gateway and recorder, migrate + serve for the portal, provision


def test_command_lines_mean_what_the_docs_say() -> None:
    gateway = [parse(a) for a in bcc_commands(unit("bcc-gateway@.service"))]
    assert [g.check_config for g in gateway] == [True, False]
    assert {g.site for g in gateway} == {f"/etc/bcc/sites/{SITE}.yaml"}
    assert gateway[1].telemetry_spool == Path(f"/var/lib/bcc-gateway-{SITE}/telemetry.sqlite3")
    assert unit("bcc-gateway@.service").value("Service", "StateDirectory") == "bcc-gateway-%i"
    recorder = [parse(a) for a in bcc_commands(unit("bcc-recorder@.service"))]
    assert {r.site for r in recorder} == {f"/etc/bcc/sites/{SITE}.yaml"}
    assert recorder[1].spool == Path(f"/var/lib/bcc-recorder-{SITE}/spool.sqlite3")
    assert unit("bcc-recorder@.service").value("Service", "StateDirectory") == "bcc-recorder-%i"
    migrate, serve = (parse(a) for a in bcc_commands(unit("bcc-portal.service")))
    assert migrate.portal_command == "migrate"
    assert (serve.portal_command, serve.host, serve.port) == ("serve", "127.0.0.1", 8000)
    assert serve.workers > 1 and serve.proxy_headers
    assert (serve.metrics_host, serve.metrics_port) == ("127.0.0.1", 9103)  # deploy/prometheus/scrape.yml
    (provision,) = (parse(a) for a in bcc_commands(unit("bcc-influx-provision@.service")))
    assert (provision.action, provision.site, provision.create_admin) == (
        "provision",
        f"/etc/bcc/sites/{SITE}.yaml",
        True,
    )


def test_a_renamed_flag_fails_the_parse_check() -> None:
    with pytest.raises(AssertionError, match="bcc does not accept"):
        parse(["gateway", "--site-file", "/etc/bcc/sites/room.yaml"])


def credentials(u: Unit, folder: Path, secrets: dict[str, str]) -> Path:
    """A credentials directory as systemd makes it from ``LoadCredential=`` (one file per name)."""
    folder.mkdir()
    for name in u.credentials():
        (folder / name).write_text(secrets[name] + "\n", encoding="utf-8")
    return folder


def test_gateway_unit_environment_gives_a_valid_configuration(tmp_path: Path) -> None:
    u = unit("bcc-gateway@.service")
    assert u.credentials() == {"mqtt_password": "/etc/bcc/secrets/mqtt-gateway"}
    creds = credentials(u, tmp_path / "creds", {"mqtt_password": "gateway-password-from-a-file"})
    env = u.environment(SITE, str(creds))
    cfg = load_gateway_config(ROOT / "devices" / "sites" / "bcc_room.yaml", env)
    assert cfg.password == "gateway-password-from-a-file"


def test_recorder_unit_environment_gives_a_valid_configuration(tmp_path: Path) -> None:
    u = unit("bcc-recorder@.service")
    creds = credentials(
        u, tmp_path / "creds", {"mqtt_password": "recorder-mqtt", "influx_password": "recorder-influx"}
    )
    site = tmp_path / "room.yaml"
    text = (ROOT / "devices" / "sites" / "bcc_room.yaml").read_text(encoding="utf-8")
    site.write_text(text + "influxdb: {auth: basic, username: bcc_recorder}\n", encoding="utf-8")
    cfg = load_recorder_config(site, u.environment(SITE, str(creds)))
    assert (cfg.mqtt_password, cfg.influx_password) == ("recorder-mqtt", "recorder-influx")


def test_provision_unit_environment_gives_a_valid_plan(tmp_path: Path) -> None:
    u = unit("bcc-influx-provision@.service")
    assert u.credentials() == {
        "influx_admin": "/etc/bcc/secrets/influx-admin",
        "influx_password": "/etc/bcc/secrets/influx-recorder",
        "influx_grafana": "/etc/bcc/secrets/influx-grafana",
    }
    secrets = {"influx_admin": "admin-pw", "influx_password": "recorder-pw", "influx_grafana": "grafana-pw"}
    creds = credentials(u, tmp_path / "creds", secrets)
    text = (ROOT / "devices" / "sites" / "bcc_room.yaml").read_text(encoding="utf-8")
    site = tmp_path / "room.yaml"
    site.write_text(text + "influxdb: {auth: basic, username: bcc_recorder}\n", encoding="utf-8")
    planned = plan(load_site(site), u.environment(SITE, str(creds)), str(site), None)
    assert (planned.admin.name, planned.admin.password) == ("bcc_admin", "admin-pw")
    assert [(a.name, a.password, a.privilege) for a in planned.accounts] == [
        ("bcc_recorder", "recorder-pw", "WRITE"),
        ("grafana", "grafana-pw", "READ"),
    ]


def test_portal_unit_with_the_example_env_file_gives_valid_settings(tmp_path: Path) -> None:
    u = unit("bcc-portal.service")
    assert u.value("Service", "EnvironmentFile") == "/etc/bcc/portal.env"
    key = "k" * 48
    mqtt = "m" * 24
    creds = credentials(u, tmp_path / "creds", {"portal_secret_key": key, "mqtt-portal": mqtt})
    example = environment_file(PORTAL_ENV_EXAMPLE)
    # systemd: Environment= first, then EnvironmentFile= (the file wins where both set a variable)
    settings = Settings.from_env({**u.environment(credentials=str(creds)), **example})
    assert settings.secret_key.get_secret_value() == key
    assert settings.trust_forwarded_for and settings.cookie_secure
    assert settings.database_url.startswith("postgresql://")
    assert str(settings.media_dir).startswith("/var/lib/" + str(u.value("Service", "StateDirectory")))
    assert settings.mqtt is not None and settings.public_url.startswith("https://")
    assert settings.mqtt.password.get_secret_value() == mqtt  # a credential, not in the env file
    assert "BCC_MQTT_PASSWORD_PORTAL" not in example
