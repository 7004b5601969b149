"""Prometheus metrics of ``bcc alarms``: alarm health as EEMUA 191 measures it (docs/alarms.md, "Alarm
health"), refreshed from the database every ``HEALTH_EVERY_S`` by every evaluator (active or standby)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge

from bcc_contract.alarm_health import AlarmHealth


class AlarmMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.raised = Gauge("bcc_alarms_raised_24h", "Alarms raised in the last 24 hours", registry=r)
        self.rate = Gauge(
            "bcc_alarms_per_hour",
            "Alarms raised per hour over the last 24 hours (one alarm console: per operator)",
            registry=r,
        )
        self.peak = Gauge(
            "bcc_alarms_peak_hour", "Alarms raised in the busiest hour of the last 24 h", registry=r
        )
        self.acked = Gauge(
            "bcc_alarms_acked_per_hour",
            "Alarms acknowledged per hour over the last 24 hours, by operator",
            ["operator"],
            registry=r,
        )
        self.frequent = Gauge(
            "bcc_alarms_frequent_raised",
            "Times raised in the last 24 hours, for the ten most frequent alarms",
            ["alarm"],
            registry=r,
        )
        self.chattering = Gauge(
            "bcc_alarms_chattering_transitions",
            "Chattering alarms (more than 3 transitions within a minute in the last 24 h): most in a minute",
            ["alarm"],
            registry=r,
        )
        self.chattering_count = Gauge("bcc_alarms_chattering", "Number of chattering alarms", registry=r)
        self.standing = Gauge(
            "bcc_alarms_standing_hours",
            "Standing alarms (active more than 24 hours): hours active",
            ["alarm", "severity"],
            registry=r,
        )
        self.standing_count = Gauge("bcc_alarms_standing", "Number of standing alarms", registry=r)

    def update(self, health: AlarmHealth) -> None:
        self.raised.set(health.raised)
        self.rate.set(health.per_hour)
        self.peak.set(health.peak_hour)
        for gauge in (self.acked, self.frequent, self.chattering, self.standing):
            gauge.clear()  # alarms that left a list leave the metric too
        for who, rate in health.acked_per_hour:
            self.acked.labels(who).set(rate)
        for alarm, count in health.frequent:
            self.frequent.labels(alarm).set(count)
        for alarm, count in health.chattering:
            self.chattering.labels(alarm).set(count)
        for alarm, severity, hours in health.standing:
            self.standing.labels(alarm, severity).set(hours)
        self.chattering_count.set(len(health.chattering))
        self.standing_count.set(len(health.standing))
