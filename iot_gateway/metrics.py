"""Prometheus metrics of one gateway instance (its own registry, so several can share a process)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.poll_latency = Histogram(
            "bcc_gateway_poll_latency_seconds",
            "Time to read all blocks of one poll group",
            registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.poll_jitter = Histogram(
            "bcc_gateway_poll_start_jitter_seconds",
            "Delay of a poll start past its deadline",
            registry=r,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
        )
        self.missed_deadlines = Counter(
            "bcc_gateway_missed_deadlines",
            "Poll slots skipped because a poll overran",
            ["device"],
            registry=r,
        )
        self.request_errors = Counter(
            "bcc_gateway_request_errors", "Failed Modbus requests", ["device", "kind"], registry=r
        )
        self.breaker_open = Gauge(
            "bcc_gateway_breaker_open", "1 while the device's breaker is open", ["device"], registry=r
        )
        self.commands = Counter("bcc_gateway_commands", "Command results", ["status"], registry=r)
        self.command_seconds = Histogram(
            "bcc_gateway_command_seconds",
            "From a command reaching its handler to its response handed to the broker (validation, "
            "the bus, write, read-back, state)",
            registry=r,
            buckets=(0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.retained_commands_ignored = Counter(
            "bcc_gateway_retained_commands_ignored",
            "Retained messages on command topics, ignored",
            registry=r,
        )
        self.commands_not_owned = Counter(
            "bcc_gateway_commands_not_owned",
            "Commands to devices this gateway does not own, ignored (another gateway's, or unknown)",
            registry=r,
        )
        self.telemetry_states = Counter(
            "bcc_gateway_bulk_telemetry_states", "States sent in bulk telemetry messages", registry=r
        )
        self.telemetry_dropped = Counter(
            "bcc_gateway_bulk_telemetry_dropped",
            "States dropped from bulk telemetry while the broker was away (oldest first)",
            registry=r,
        )
        self.telemetry_pending = Gauge(
            "bcc_gateway_bulk_telemetry_pending",
            "Bulk telemetry states not yet acknowledged by the broker (memory and spool file)",
            registry=r,
        )
        self.incoming_dropped = Counter(
            "bcc_gateway_mqtt_incoming_dropped",
            "Incoming messages dropped (never handled) because the incoming queue was full",
            registry=r,
        )
        self.incoming_waiting = Gauge(
            "bcc_gateway_mqtt_incoming_waiting", "Received MQTT messages waiting for a handler", registry=r
        )
        self.states_waiting = Gauge(
            "bcc_gateway_states_waiting",
            "Retained device topics (state, availability) whose latest payload waits to be sent "
            "(the state window is full or there is no connection)",
            registry=r,
        )
        self.mqtt_reconnects = Counter("bcc_gateway_mqtt_connects", "MQTT (re)connections", registry=r)
        self.queue_depth = Gauge(
            "bcc_gateway_bus_queue_depth", "Requests waiting per bus", ["bus"], registry=r
        )

    def totals(self) -> dict[str, float]:
        """Counters summed over their labels, for the retained ``bridge/health`` message.

        The per-device counters are summed from their children's values: collecting the registry
        built a sample for each of the thousands of label children (and the breaker gauges), one
        synchronous slice of tens of ms every health period at 1,500 devices (py-spy, performance.md).
        """
        per_device = (self.missed_deadlines, self.request_errors)
        out: dict[str, float] = {
            "missed_deadlines_total": _children_sum(self.missed_deadlines),
            "request_errors_total": _children_sum(self.request_errors),
        }
        summed = [
            m for m in vars(self).values() if isinstance(m, Counter | Histogram) and m not in per_device
        ]
        for family in (f for m in summed for f in m.collect()):
            for sample in family.samples:
                if sample.name.endswith(("_total", "_sum", "_count")) and not sample.name.endswith(
                    "_created"
                ):
                    key = sample.name.removeprefix("bcc_gateway_")
                    if sample.name.startswith("bcc_gateway_commands_total"):
                        key = f"commands_{sample.labels.get('status', '')}"
                    out[key] = out.get(key, 0.0) + sample.value
        return out


def _children_sum(counter: Counter) -> float:
    """A labelled counter's total (prometheus_client, pinned: each child keeps its ``_value``)."""
    children: list[Any] = list(counter._metrics.values())
    return float(sum(child._value.get() for child in children))
