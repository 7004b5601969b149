"""``bcc alarms --check-config``: every problem of the site, the rules and the secrets, exit 2; ok, exit 0."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bcc.cli import build_parser
from devices.loader import DEMO_SITE, load_site
from iot_gateway.alarms import cli
from iot_gateway.alarms.rules import RULES_DIR, load_rules, rules_path_for


def main(argv: list[str]) -> int:
    """``bcc`` with these arguments, without configuring the process's logging (bcc.cli.main would
    point structlog at pytest's captured output, which is closed after the test)."""
    return cli.run(build_parser(argv).parse_args(argv))


def test_check_config_lists_every_problem_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for var in ("BCC_MQTT_PASSWORD", "BCC_MQTT_PASSWORD_FILE", "BCC_ALARMS_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    raw = yaml.safe_load((RULES_DIR / "bcc_room.yaml").read_text(encoding="utf-8"))
    raw["rules"][0]["devices"] = ["env_front", "env_middle"]
    raw["rules"][1]["severity"] = "urgent"
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("BCC_ALARMS_DATABASE_URL", "mysql://nope")
    assert main(["alarms", "--rules", str(rules), "--state", str(tmp_path / "s.db"), "--check-config"]) == 2
    err = capsys.readouterr().err
    assert "configuration invalid (5 problems)" in err
    for piece in (
        "rule room_temperature_high: unknown device 'env_middle'",
        "rules.room_temperature_critical: severity: Input should be 'critical', 'high', 'medium' or 'low'",
        "mqtt.username 'alarms' has no password",
        "--state and BCC_ALARMS_DATABASE_URL both given",
        "BCC_ALARMS_DATABASE_URL: expected sqlite:///PATH or postgresql://",
    ):
        assert piece in err, err


def test_check_config_ok(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("BCC_MQTT_PASSWORD", "alarms-secret-0123")
    monkeypatch.delenv("BCC_ALARMS_DATABASE_URL", raising=False)
    assert main(["alarms", "--check-config", "--instance", "rack_a"]) == 0
    loaded = load_site(DEMO_SITE)
    path = rules_path_for(loaded)
    rules = yaml.safe_load(path.read_text(encoding="utf-8"))["rules"]
    alarms = len(load_rules(path, loaded).alarms)  # a rule on "*" or a device list makes one per device
    assert alarms > len(rules)
    assert capsys.readouterr().out.strip() == f"configuration ok: {len(rules)} rules, {alarms} alarms"
    assert main(["alarms", "--check-config", "--instance", "Rack A"]) == 2
    assert "instance 'Rack A': lower-case letters" in capsys.readouterr().err


def test_a_database_without_the_alarm_tables_is_refused_before_any_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BCC_MQTT_PASSWORD", "alarms-secret-0123")
    monkeypatch.setenv("BCC_ALARMS_DATABASE_URL", f"sqlite:///{tmp_path / 'not_migrated.db'}")
    assert main(["alarms", "--instance", "rack_a"]) == 2
    err = capsys.readouterr().err
    assert "state database unusable: the database has no table alarm_states" in err
    assert "bcc portal migrate" in err
