"""Prometheus metrics of one recorder (its own registry). "Points" are field values throughout."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class RecorderMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.messages = Counter("bcc_recorder_messages", "MQTT messages received", registry=r)
        self.received = Counter(
            "bcc_recorder_points_received", "Field values converted from MQTT", registry=r
        )
        self.spooled = Counter(
            "bcc_recorder_points_spooled", "Field values committed to the spool", registry=r
        )
        self.written = Counter("bcc_recorder_points_written", "Field values accepted by InfluxDB", registry=r)
        self.dropped = Counter(
            "bcc_recorder_points_dropped", "Field values dropped because the spool was full", registry=r
        )
        self.dead_lettered = Counter(
            "bcc_recorder_points_dead_lettered",
            "Field values InfluxDB refused (400) or too large",
            registry=r,
        )
        self.dead_messages = Counter(
            "bcc_recorder_messages_dead_lettered", "MQTT messages that could not be converted", registry=r
        )
        self.write_errors = Counter(
            "bcc_recorder_write_errors", "Failed /write requests", ["kind"], registry=r
        )
        self.write_latency = Histogram(
            "bcc_recorder_write_latency_seconds",
            "Duration of one /write request",
            registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
        )
        self.spool_depth = Gauge(
            "bcc_recorder_spool_depth_points", "Field values waiting in the spool", registry=r
        )
        self.spool_rows = Gauge("bcc_recorder_spool_depth_rows", "Rows waiting in the spool", registry=r)
        self.spool_errors = Counter(
            "bcc_recorder_spool_errors",
            "Spool transactions that failed (disk full, I/O error); data stays at the broker or in the spool",
            registry=r,
        )
        self.spool_ok = Gauge("bcc_recorder_spool_ok", "0 while the spool cannot be written", registry=r)
        self.influx_up = Gauge("bcc_recorder_influxdb_up", "1 while the last write succeeded", registry=r)
        self.mqtt_connects = Counter("bcc_recorder_mqtt_connects", "MQTT (re)connections", registry=r)
        # From the portal's retained bcc/reports/backlog (every minute): the portal has no metrics endpoint.
        self.reports_overdue = Gauge(
            "bcc_recorder_reports_overdue",
            "Open citizen reports past their verification or response deadline (last bcc/reports/backlog)",
            ["stage"],
            registry=r,
        )
        self.backlog_time = Gauge(
            "bcc_recorder_reports_backlog_timestamp_seconds",
            "Time (ts) of the last bcc/reports/backlog the portal published; 0 before the first",
            registry=r,
        )
