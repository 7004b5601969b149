"""The alarm vocabulary on MQTT (``<base>/alarms/...``, docs/alarms.md): severities, most severe first,
the ISA-18.2 states of an alarm, and the operator actions ``bcc alarms`` accepts."""

from __future__ import annotations

SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low")
STATES: tuple[str, ...] = ("normal", "active_unacked", "active_acked", "cleared_unacked", "shelved")
ACTIONS: tuple[str, ...] = ("ack", "shelve", "unshelve")
# States an operator must see: everything but normal.
SHOWN_STATES = frozenset(STATES) - {"normal"}
