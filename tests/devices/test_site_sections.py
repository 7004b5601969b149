"""The typed site sections: ``influxdb:`` and ``console:`` are checked with the rest of the site, by both
``bcc gateway --check-config`` and ``bcc recorder --check-config``, every problem named by its key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from devices.loader import DEMO_SITE, ConfigError, load_site
from tests.support.paths import ROOT
from tests.support.site_expect import TWO_FLOORS

ENV = {"PATH": "/usr/bin:/bin", "BCC_MQTT_PASSWORD": "s3cret-from-env"}


def check_config(tool: str, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bcc", tool, "--site", str(site), "--check-config"],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )


def site_with(tmp_path: Path, **sections: Any) -> Path:
    raw = yaml.safe_load(DEMO_SITE.read_text(encoding="utf-8"))
    raw.update(sections)
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


BROKEN = {
    "influxdb": {"url": "ftp://influx", "batch_points": 0, "retention": "90d"},
    "console": {
        "circuits": [{"device": "lights_x"}, {"device": "lights_a", "points": ["relay_1", "relay_9"]}],
        "sensors": [{"device": "env_front", "points": ["temp"]}],
    },
}


@pytest.mark.parametrize("tool", ["gateway", "recorder"])
def test_check_config_rejects_broken_sections_naming_every_key(tmp_path: Path, tool: str) -> None:
    result = check_config(tool, site_with(tmp_path, **BROKEN))
    assert result.returncode == 2, result.stdout
    for expected in (
        "influxdb.url: InfluxDB URL 'ftp://influx': must be http(s)://host[:port]",
        "influxdb.batch_points: Input should be greater than or equal to 1",
        "influxdb.retention: Extra inputs are not permitted",
        "console.circuits.lights_x: no device 'lights_x' in devices",
        "console.circuits.lights_a.points: profile relay8 has no point 'relay_9'",
        "console.sensors.env_front.points: profile envsensor has no point 'temp'",
    ):
        assert expected in result.stderr, (expected, result.stderr)
    assert "6 problems" in result.stderr


@pytest.mark.parametrize("tool", ["gateway", "recorder"])
@pytest.mark.parametrize("site", [DEMO_SITE, TWO_FLOORS], ids=["bcc_room", "two_floors"])
def test_shipped_sites_pass_both_checks(tool: str, site: Path) -> None:
    result = check_config(tool, site)
    assert result.returncode == 0, result.stderr


def problems(tmp_path: Path, **sections: Any) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_site(site_with(tmp_path, **sections))
    return err.value.problems


def test_console_points_must_fit_their_role(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        console={
            "circuits": [{"device": "meter_main", "points": ["power_total"]}, {"device": "env_back"}],
            "walls": [{"device": "wall", "layout": "display_1_on"}, {"device": "lights_b"}],
            "meters": [{"device": "meter_main"}, {"device": "meter_main"}],
        },
    )
    assert any(
        "console.circuits.meter_main.points: point 'power_total'" in p and "writable on/off" in p
        for p in found
    )
    assert any("console.circuits.env_back.points: profile envsensor suggests none" in p for p in found)
    assert any(
        "console.walls.wall.layout: point 'display_1_on' is not a writable enumeration" in p for p in found
    )
    assert any("console.walls.lights_b.displays: profile relay8 suggests none" in p for p in found)
    assert any("console.meters.meter_main: listed more than once" in p for p in found)
    assert len(found) == 5, found


def test_console_unknown_key_is_named(tmp_path: Path) -> None:
    found = problems(tmp_path, console={"circuits": [{"device": "lights_a", "pointz": ["relay_1"]}]})
    assert any("console.circuits.lights_a.pointz: Extra inputs are not permitted" in p for p in found), found


def test_left_out_lists_come_from_the_profiles_and_empty_lists_draw_nothing(tmp_path: Path) -> None:
    loaded = load_site(site_with(tmp_path, console={"walls": [], "sensors": [{"device": "env_back"}]}))
    plan = loaded.console()
    assert plan.walls == () and [s.device for s in plan.sensors] == ["env_back"]
    assert [c.device for c in plan.circuits] == ["lights_a", "lights_b"]  # derived: relay8 devices
    assert plan.sensors[0].points == ("temperature", "humidity", "co2", "illuminance")


def test_a_broken_device_is_not_reported_twice_by_the_console(tmp_path: Path) -> None:
    raw = yaml.safe_load(DEMO_SITE.read_text(encoding="utf-8"))
    raw["devices"][0]["unit"] = 999
    raw["console"] = {"circuits": [{"device": raw["devices"][0]["id"]}]}
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_site(path)
    assert [p for p in err.value.problems if "console" in p] == []
    assert any("unit" in p for p in err.value.problems)
