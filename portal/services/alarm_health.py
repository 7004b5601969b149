"""Alarm health (EEMUA 191) for the staff page ``/konsol/kesehatan-alarm``: the history and the alarm
records ``bcc alarms`` keeps in the portal's database, measured by bcc_contract/alarm_health.py (the
same computation as the evaluator's Prometheus metrics and its daily summary)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bcc_contract.alarm_health import WINDOW_S, ActiveAlarm, AlarmHealth, HistoryEvent, compute_health
from portal.models import AlarmEventRow, AlarmStateRow

ACTIVE_STATES = ("active_unacked", "active_acked", "shelved")


def alarm_health(db: Session, now: datetime, window_s: float = WINDOW_S) -> AlarmHealth:
    since = now - timedelta(seconds=window_s)
    rows = db.execute(
        select(AlarmEventRow.alarm, AlarmEventRow.event, AlarmEventRow.at, AlarmEventRow.who)
        .where(AlarmEventRow.at > since)
        .order_by(AlarmEventRow.seq)
    ).all()
    history = [HistoryEvent(alarm, event, at.timestamp(), who) for alarm, event, at, who in rows]
    active: list[ActiveAlarm] = []
    for state in db.scalars(select(AlarmStateRow).where(AlarmStateRow.active.is_(True))):
        record = json.loads(state.record)
        if state.state in ACTIVE_STATES and record.get("raised_at") is not None:
            active.append(ActiveAlarm(state.id, state.severity, float(record["raised_at"])))
    return compute_health(history, active, now.timestamp(), window_s)
