"""The alert rules: promtool accepts them and the scrape example, and the unit tests in
deploy/prometheus/tests/ make every alert fire and stay quiet (and fail when an alert is broken)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.alert_rules import PROMETHEUS_DIR, RULES, alert_rules, metric_names, used_metrics

UNIT_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool not installed: run scripts/sysdeps.sh (Debian package: prometheus)")
    return subprocess.run([binary, *args], capture_output=True, text=True, check=False, timeout=120)


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_scrape_example_is_a_valid_prometheus_config(tmp_path: Path) -> None:
    for name in ("scrape.yml", "bcc-alerts.yml"):  # the example names the rules beside it
        shutil.copy(PROMETHEUS_DIR / name, tmp_path / name)
    result = promtool("check", "config", str(tmp_path / "scrape.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = {
        j["job_name"] for j in yaml.safe_load((PROMETHEUS_DIR / "scrape.yml").read_text())["scrape_configs"]
    }
    used_jobs = {job for rule in alert_rules() for job in _jobs(rule["expr"])}
    assert used_jobs == jobs == {"bcc-gateway", "bcc-recorder", "bcc-portal"}


def _jobs(expr: str) -> set[str]:
    return {part.split('"')[1] for part in expr.split("job=")[1:]}


def test_promtool_unit_tests_pass() -> None:
    assert UNIT_TESTS, "no files in deploy/prometheus/tests/"
    result = promtool("test", "rules", *map(str, UNIT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def _cases() -> dict[str, tuple[int, int]]:
    """alert -> (cases expecting it to fire, cases expecting it quiet) over every unit test file."""
    out: dict[str, tuple[int, int]] = {}
    for path in UNIT_TESTS:
        for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            for case in test.get("alert_rule_test", []):
                fire, quiet = out.get(case["alertname"], (0, 0))
                out[case["alertname"]] = (fire + 1, quiet) if case["exp_alerts"] else (fire, quiet + 1)
    return out


def test_every_alert_is_tested_firing_and_quiet() -> None:
    cases = _cases()
    for rule in alert_rules():
        fire, quiet = cases.get(rule["alert"], (0, 0))
        assert fire >= 1 and quiet >= 1, f"{rule['alert']}: {fire} firing and {quiet} quiet cases"
    assert set(cases) == {r["alert"] for r in alert_rules()}, "a test names an alert that does not exist"


@pytest.mark.parametrize("alert", [r["alert"] for r in alert_rules()])
def test_unit_tests_fail_when_an_alert_never_fires(alert: str, tmp_path: Path) -> None:
    """The unit tests can fail: with one alert's expression made impossible, promtool reports it."""
    data: dict[str, Any] = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    for group in data["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alert:
                rule["expr"] = f"({rule['expr']}) and vector(0) > 1"
    (tmp_path / "bcc-alerts.yml").write_text(yaml.safe_dump(data), encoding="utf-8")
    (tmp_path / "tests").mkdir()
    for path in UNIT_TESTS:
        shutil.copy(path, tmp_path / "tests" / path.name)
    result = promtool("test", "rules", *(str(tmp_path / "tests" / p.name) for p in UNIT_TESTS))
    assert result.returncode != 0
    assert alert in result.stdout + result.stderr


def test_metric_names_are_read_from_expressions() -> None:
    assert metric_names('increase(a_total{job="x", device=~"y.*"}[10m]) > 5 or b == 0') == {"a_total", "b"}
    assert metric_names("sum by (device) (rate(c[5m]))") == {"c"}
    assert "up" in used_metrics()
