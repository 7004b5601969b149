"""The shipped Prometheus alert rules (deploy/prometheus/bcc-alerts.yml) and the metric names they use."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.support.paths import ROOT

PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "bcc-alerts.yml"
# Series Prometheus makes itself for every target, not exported by a service.
SYNTHETIC = {"up"}
_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool"}


def alert_rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in data["groups"] for rule in group["rules"] if "alert" in rule]


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords, label
    matchers, ranges or strings (enough for the shipped rules; an unknown construct shows up as a
    name that no service exports, so the test fails rather than missing it)."""
    text = re.sub(r'"[^"]*"', "", expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        rest = text[m.end() :].lstrip()
        if rest.startswith("(") or m.group() in _KEYWORDS:
            continue
        names.add(m.group())
    return names


def used_metrics() -> set[str]:
    return set().union(*(metric_names(rule["expr"]) for rule in alert_rules()))
