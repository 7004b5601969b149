"""Report events and the backlog gauge through a real Mosquitto with the project's ACL (role ``portal``)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from mosquitto import MosquittoProcess
from portal.config import PortalMqttSettings
from portal.main import create_app
from portal.runtime import runtime_of
from portal.services import reports
from tests.support.portal_app import FakeClock, csrf, make_settings, staff_client, submit
from tests.support.wait import eventually_sync

EVENT_KEYS = {
    "event",
    "report",
    "category",
    "agency",
    "kecamatan",
    "status",
    "resolution",
    "duration_s",
    "late",
    "ts",
}
BACKLOG_KEYS = {"ts", "open", "by_category", "overdue_verification", "overdue_response"}


class Listener:
    """A ``readonly`` subscriber collecting every message under bcc/reports/#."""

    def __init__(self, broker: MosquittoProcess) -> None:
        self.messages: list[tuple[str, dict[str, Any], bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.username_pw_set("readonly", broker.password("readonly"))
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe("bcc/reports/#", qos=1)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, json.loads(msg.payload), bool(msg.retain)))

    def wait(self, topic: str, predicate: Any = lambda p: True, timeout: float = 5.0) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            with self.lock:
                return next((p for t, p, _r in self.messages if t == topic and predicate(p)), None)

        return eventually_sync(found, timeout, step=0.01, what=f"a matching message on {topic}")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


async def test_lifecycle_events_and_backlog_without_personal_data(
    mosquitto: MosquittoProcess, portal_db_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    mqtt_settings = PortalMqttSettings(
        host=mosquitto.host, port=mosquitto.port, password=mosquitto.password("portal")
    )
    app = create_app(make_settings(portal_db_url, tmp_path, mqtt=mqtt_settings), clock=clock.now)
    listener = Listener(mosquitto)
    try:
        with TestClient(app) as client:
            first = listener.wait("bcc/reports/backlog")  # published at start-up: the readiness signal
            assert set(first) == BACKLOG_KEYS and first["open"]["submitted"] == 0
            code = submit(client, contact_name="Rahasia Sekali", contact_email="pribadi@example.id")
            created = listener.wait("bcc/reports/events", lambda p: p["event"] == "created")
            assert set(created) == EVENT_KEYS
            assert created == {
                **created,
                "report": code,
                "category": "perencanaan_pembangunan",
                "agency": None,
                "kecamatan": "binjai_kota",
                "status": "submitted",
                "resolution": None,
                "duration_s": None,
                "late": False,
                "ts": "2026-11-02T02:00:00Z",
            }
            backlog = listener.wait("bcc/reports/backlog", lambda p: p["open"]["submitted"] == 1)
            assert backlog["by_category"] == {"perencanaan_pembangunan": 1}
            clock.advance(days=4)  # Friday 09:00 WIB: past the Thursday deadline
            admin = staff_client(app, "admin")
            with runtime_of(app).sessions() as db:
                rid = reports.get_by_code(db, code).id
            token = csrf(admin, "/staf")
            admin.post(f"/staf/laporan/{rid}/verifikasi", data={"csrf_token": token})
            verified = listener.wait("bcc/reports/events", lambda p: p["event"] == "verified")
            assert verified["late"] is True and verified["duration_s"] == 4 * 86400
            admin.post(f"/staf/laporan/{rid}/disposisi", data={"csrf_token": token})
            admin.post(
                f"/staf/laporan/{rid}/tutup", data={"csrf_token": token, "resolution": "resolved_direct"}
            )
            closed = listener.wait("bcc/reports/events", lambda p: p["event"] == "closed")
            assert closed["agency"] == "bappeda" and closed["resolution"] == "resolved_direct"
            listener.wait("bcc/reports/backlog", lambda p: sum(p["open"].values()) == 0)
            admin.close()
        with listener.lock:
            everything = json.dumps([m[1] for m in listener.messages])
            retained_events = [m for m in listener.messages if m[0] == "bcc/reports/events" and m[2]]
        assert "Rahasia" not in everything and "pribadi@" not in everything and "Drainase" not in everything
        assert retained_events == []
    finally:
        listener.close()


async def test_submission_succeeds_while_the_broker_is_down(
    mosquitto: MosquittoProcess, portal_db_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    mqtt_settings = PortalMqttSettings(
        host=mosquitto.host, port=mosquitto.port, password=mosquitto.password("portal")
    )
    app = create_app(make_settings(portal_db_url, tmp_path, mqtt=mqtt_settings), clock=clock.now)
    await mosquitto.stop()
    with TestClient(app) as client:
        code = submit(client)
        assert client.get(f"/laporan/{code}").status_code == 200


def test_confidential_reports_events_carry_no_tracking_code(
    mosquitto: MosquittoProcess, portal_db_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    """Defect: every event carried the report's code, confidential ones included, to every account that
    reads bcc/reports/events (and on into InfluxDB and Grafana)."""
    mqtt_settings = PortalMqttSettings(
        host=mosquitto.host, port=mosquitto.port, password=mosquitto.password("portal")
    )
    app = create_app(make_settings(portal_db_url, tmp_path, mqtt=mqtt_settings), clock=clock.now)
    listener = Listener(mosquitto)
    try:
        with TestClient(app) as client:
            listener.wait("bcc/reports/backlog")
            secret = submit(client, privacy="confidential")
            created = listener.wait("bcc/reports/events", lambda p: p["event"] == "created")
            assert set(created) == EVENT_KEYS and created["report"] is None
            later = submit(client)  # public when created, confidential from then on
            listener.wait("bcc/reports/events", lambda p: p["report"] == later)
            r = client.post(
                f"/laporan/{later}/privasi", data={"csrf_token": csrf(client), "privacy": "confidential"}
            )
            assert r.status_code == 200
            admin = staff_client(app, "admin")
            token = csrf(admin, "/staf")
            with runtime_of(app).sessions() as db:
                ids = [reports.get_by_code(db, c).id for c in (secret, later)]
            for rid in ids:
                admin.post(f"/staf/laporan/{rid}/verifikasi", data={"csrf_token": token})
            eventually_sync(
                lambda: len(verified_events(listener)) >= 2, 5, 0.01, "both verifications went out"
            )
            admin.close()
        with listener.lock:
            everything = json.dumps([m[1] for m in listener.messages])
        verified = verified_events(listener)
        assert len(verified) == 2 and all(e["report"] is None for e in verified)
        assert secret not in everything
    finally:
        listener.close()


def verified_events(listener: Listener) -> list[dict[str, Any]]:
    with listener.lock:
        return [
            m[1] for m in listener.messages if m[0] == "bcc/reports/events" and m[1]["event"] == "verified"
        ]
