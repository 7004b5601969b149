"""The wall page without a broker: layout data, privacy, read-only page, access (staff, kiosk tokens)."""

from __future__ import annotations

import re
from html import escape as html_escape
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from portal.i18n import translate
from portal.main import create_app
from portal.runtime import runtime_of
from portal.services import reports, wall
from portal.services.wall import LAYOUTS, VIEWS, WallError, load_wall
from tests.support.portal_app import FakeClock, csrf, staff_client, submit

PEOPLE = {
    "public": ("Siti Aminah Publik", "081234560001", "siti.publik@example.id"),
    "anonymous": ("Budi Santoso Anonim", "081234560002", "budi.anonim@example.id"),
    "confidential": ("Rahmawati Rahasia", "081234560003", "rahma.rahasia@example.id"),
}


def test_layout_file_is_valid_and_covers_every_preset() -> None:
    config = load_wall()
    assert set(config.layouts) == set(LAYOUTS)
    assert config.stale_after_s == 60
    for name, regions in config.layouts.items():
        if name.startswith("split_"):
            assert len(regions) == int(name[6:])
        assert abs(sum(r.width for r in regions) - 7) < 0.05
        views = [v for r in regions for v in r.views]
        assert len(views) == len(set(views)) and set(views) <= set(VIEWS)


def test_layout_presets_match_the_controller_profile(app: FastAPI, client: TestClient) -> None:
    assert [set(w.layouts) for w in runtime_of(app).room.plan.walls] == [set(LAYOUTS)]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("  split_4:\n    - {width: 7, views: [feed]}\n", "split_4: 1 regions"),
        ("  wide:\n    - {width: 7, views: [feed, nope]}\n", "unknown view 'nope'"),
        ("  wide:\n    - {width: 3.5, views: [feed]}\n    - {width: 3.5, views: [feed]}\n", "appears twice"),
        ("  wide:\n    - {width: 5, views: [feed]}\n", "add up to 5"),
        ("  split_9:\n    - {width: 7, views: [feed]}\n", "not a preset"),
    ],
)
def test_bad_layout_file_is_refused_at_start(tmp_path: Path, change: str, message: str) -> None:
    text = wall.DEFAULT_FILE.read_text(encoding="utf-8")
    name = change.split(":")[0].strip()
    if name in LAYOUTS:  # replace that layout's block
        text = re.sub(rf"  {name}:\n(    - .*\n)+", "", text)
    path = tmp_path / "wall.yaml"
    path.write_text(text + change, encoding="utf-8")
    with pytest.raises(WallError, match=re.escape(message)):
        load_wall(path)
    path.write_text("layouts: {}\n", encoding="utf-8")
    with pytest.raises(WallError, match="layout wide missing"):
        load_wall(path)


def _submit_all(client: TestClient) -> dict[str, str]:
    codes = {}
    for privacy, (name, phone, email) in PEOPLE.items():
        codes[privacy] = submit(
            client,
            privacy=privacy,
            contact_name=name,
            contact_phone=phone,
            contact_email=email,
            title=f"Judul {privacy} XYZZY",
            description=f"Isi laporan {privacy} QWERTY",
            address=f"Jl. Rahasia {privacy} 12",
            # The confidential report has its own category and kelurahan: neither may show up anywhere.
            category="kesehatan" if privacy == "confidential" else "perencanaan_pembangunan",
            kelurahan="nangka" if privacy == "confidential" else "tangsi",
        )
    return codes


def test_wall_never_shows_personal_data_or_confidential_reports(
    app: FastAPI, client: TestClient, clock: FakeClock
) -> None:
    codes = _submit_all(client)
    admin = staff_client(app, "admin")
    with runtime_of(app).sessions() as db:
        for privacy in ("public", "confidential"):
            rid = reports.get_by_code(db, codes[privacy]).id
            r = admin.post(f"/staf/laporan/{rid}/verifikasi", data={"csrf_token": csrf(admin, "/staf")})
            assert r.status_code in (200, 303)
    clock.advance(days=7)  # every unverified report is now late: the deadlines view lists it
    viewer = staff_client(app, "viewer")
    html = viewer.get("/dinding").text
    assert 'data-view="feed"' in html
    for name, phone, email in PEOPLE.values():
        for secret in (name, phone, email, name.split()[0]):
            assert secret not in html
    for code in codes.values():
        assert code not in html
    for secret in ("XYZZY", "QWERTY", "Jl. Rahasia"):
        assert secret not in html
    # Confidential: not in the feed, the counts, the map or the deadlines.
    assert "Kesehatan" not in html
    feed = html.split('data-view="feed"')[1].split("</section>")[0]
    assert feed.count("<li") == 2
    assert re.search(r'<li class="heat-0"><span class="n">0</span> Nangka</li>', html)
    assert re.search(r'<li class="heat-\d"><span class="n">2</span> Tangsi</li>', html)
    assert "1 terlambat" in html  # the anonymous one, still unverified; the confidential one is not counted
    admin.close()
    viewer.close()


def test_wall_shows_active_alarms_without_who_or_notes(app: FastAPI, client: TestClient) -> None:
    """The room panel lists active alarms, most severe first; never who acknowledged or shelved one,
    nor a note; not shelved alarms, nor ones already back to normal."""

    def alarm(alarm_id: str, severity: str, message: str, state: str, active: bool, **more: object) -> None:
        payload = {
            "alarm": alarm_id, "severity": severity, "state": state, "active": active,
            "message": {"id": message, "en": message}, "since": "2026-12-04T10:00:00.000Z", **more,
        }  # fmt: skip
        runtime_of(app).room.on_alarm(alarm_id, payload)

    alarm("room_temperature_high.env_front", "high", "Suhu ruang di atas 27 °C", "active_acked", True)
    alarm("gateway_offline.bridge", "critical", "Gateway IoT tidak terhubung", "active_unacked", True)
    alarm(
        "device_offline.wall", "high", "Perangkat tidak terhubung", "shelved", True,
        shelved={"by": "siti_operator", "reason": "kabel di Jl. Rahasia", "until": "2026-12-04T11:00:00Z"},
    )  # fmt: skip
    alarm("room_co2_high.env_back", "medium", "CO2 di atas 1.000 ppm", "cleared_unacked", False)
    viewer = staff_client(app, "viewer")
    html = viewer.get("/dinding").text
    viewer.close()
    room = html.split('data-view="room"')[1].split("</section>")[0]
    shown = re.findall(r'<li class="alarm [^"]+">([^<]+)</li>', room)
    assert shown == ["KRITIS: Gateway IoT tidak terhubung", "TINGGI: Suhu ruang di atas 27 °C (sudah diakui)"]
    for secret in ("siti_operator", "Jl. Rahasia", "Perangkat tidak terhubung", "CO2"):
        assert secret not in html


def test_wall_page_lets_nobody_act(app: FastAPI, client: TestClient) -> None:
    _submit_all(client)
    viewer = staff_client(app, "admin")
    r = viewer.get("/dinding")
    assert r.status_code == 200
    html = r.text
    for tag in ("<form", "<a ", "<button", "<input", "<select", "<textarea", 'class="staffnav"'):
        assert tag not in html, tag
    assert "form-action 'none'" in r.headers["content-security-policy"]
    # Everything is there in the initial preset (wide: five regions, every view).
    assert html.count('class="region"') == 5
    for view in VIEWS:
        assert f'data-view="{view}"' in html
    viewer.close()


@pytest.mark.parametrize("role", ["admin", "agency", "operator", "viewer"])
def test_any_staff_role_sees_the_wall(app: FastAPI, client: TestClient, role: str) -> None:
    c = staff_client(app, role, agency="bappeda" if role == "agency" else None)
    assert c.get("/dinding").status_code == 200
    c.close()


def test_anonymous_visitor_is_sent_to_login(client: TestClient) -> None:
    r = client.get("/dinding", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/staf/masuk")
    assert client.get("/dinding/events", follow_redirects=False).status_code == 303


def _issue(admin: TestClient, label: str) -> str:
    r = admin.post("/dinding/admin/token", data={"csrf_token": csrf(admin, "/dinding/admin"), "label": label})
    assert r.status_code == 200
    match = re.search(r"/dinding\?kiosk=([A-Za-z0-9_.-]+)", r.text)
    assert match, "the new token's address is shown once"
    return match.group(1)


def test_kiosk_token_works_until_revoked(app: FastAPI, client: TestClient) -> None:
    admin = staff_client(app, "admin")
    token = _issue(admin, "PC dinding")
    assert token not in admin.get("/dinding/admin").text  # shown once, never again
    stored = (runtime_of(app).settings.media_dir / "wall_kiosk.json").read_text()
    assert token not in stored and token.split(".")[1] not in stored  # the registry holds ids only

    with TestClient(app) as kiosk:
        r = kiosk.get(f"/dinding?kiosk={token}", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/dinding"
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/dinding" in cookie
        assert kiosk.get("/dinding").status_code == 200
        # The kiosk cookie opens the wall only: no staff page, no console, no admin page.
        for path in ("/staf", "/konsol", "/dinding/admin"):
            assert kiosk.get(path, follow_redirects=False).status_code == 303, path

        token_id = token.split(".")[0]
        r = admin.post(
            f"/dinding/admin/token/{token_id}/cabut", data={"csrf_token": csrf(admin, "/dinding/admin")}
        )
        assert r.status_code == 200 and "dicabut" in r.text
        assert kiosk.get("/dinding").status_code == 403
        assert kiosk.get("/dinding/events").status_code == 403
        assert kiosk.get(f"/dinding?kiosk={token}", follow_redirects=False).status_code == 403
    admin.close()


def test_forged_or_foreign_kiosk_tokens_are_refused(app: FastAPI, client: TestClient, tmp_path: Path) -> None:
    admin = staff_client(app, "admin")
    token = _issue(admin, "PC dinding")
    token_id, sig = token.split(".")
    forged = [f"{token_id}.{'0' * len(sig)}", f"{'A' * 16}.{sig}", token_id, "", "x.y"]
    other = wall.KioskStore(tmp_path / "other.json", "another-secret-key-" + "z" * 20).issue(
        "x", "y", runtime_of(app).clock()
    )
    with TestClient(app) as kiosk:
        for bad in [*forged, other]:
            kiosk.cookies.set("bcc_wall", bad, path="/dinding")
            r = kiosk.get("/dinding", follow_redirects=False)
            assert r.status_code in (303, 403), bad  # empty cookie -> login; anything else -> refused
    # Losing the registry file revokes every token (fail closed).
    (runtime_of(app).settings.media_dir / "wall_kiosk.json").unlink()
    assert runtime_of(app).wall.kiosk.check(token) is None
    admin.close()


def test_kiosk_admin_is_for_admins_only(app: FastAPI, client: TestClient) -> None:
    for role in ("operator", "viewer"):
        c = staff_client(app, role)
        assert c.get("/dinding/admin").status_code == 403
        assert (
            c.post("/dinding/admin/token", data={"csrf_token": csrf(c, "/staf"), "label": "x"}).status_code
            == 403
        )
        c.close()


def test_indonesian_date_and_age_texts() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 28, 1, 5, tzinfo=UTC)
    assert wall.tanggal(now) == "Sabtu, 28 November 2026"
    assert wall.jam(now) == "08.05 WIB"
    assert [wall.umur(s) for s in (5, 600, 7200, 3 * 86400)] == ["baru saja", "10 menit", "2 jam", "3 hari"]


def _assignment(app: FastAPI) -> dict[str, str]:
    form = {}
    for name, regions in runtime_of(app).wall.config.layouts.items():
        for i, r in enumerate(regions):
            form[f"{name}.{i}.width"] = str(r.width)
            form[f"{name}.{i}.views"] = ", ".join(r.views)
    return form


def test_admin_changes_which_view_goes_where(app: FastAPI, client: TestClient) -> None:
    admin = staff_client(app, "admin")
    form = _assignment(app)
    form["wide.0.views"] = "clock, feed"
    form["wide.4.views"] = "room"
    r = admin.post(
        "/dinding/admin/tata-letak",
        data={**form, "csrf_token": csrf(admin, "/dinding/admin")},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert runtime_of(app).wall.config.layouts["wide"][0].views == ("clock", "feed")
    html = admin.get("/dinding").text
    first = html.split('class="region"')[1]
    assert (
        first.index('data-view="clock"') < first.index('data-view="feed"') and 'data-view="map"' not in first
    )
    # A fresh start (another worker, a restart) uses the saved assignment.
    other = create_app(runtime_of(app).settings)
    with TestClient(other):
        assert runtime_of(other).wall.config.layouts["wide"][0].views == ("clock", "feed")

    # Refused with the reason, nothing stored: split_4 with a view twice, widths not adding up to 7.
    bad = {**form, "split_4.0.views": "feed, feed", "split_2.0.width": "1"}
    r = admin.post(
        "/dinding/admin/tata-letak?lang=en", data={**bad, "csrf_token": csrf(admin, "/dinding/admin")}
    )
    assert r.status_code == 400
    assert "appears twice" in r.text and "add up to" in r.text
    # in the admin's language; a width that is no number is named by its place in the form
    token = csrf(admin, "/dinding/admin")
    total = f"{1 + float(form['split_2.1.width']):g}"
    cases: tuple[tuple[dict[str, str], list[tuple[str, dict[str, object]]]], ...] = (
        (bad, [("wall_err_view_twice", {"name": "split_4", "view": "feed"}),
               ("wall_err_widths", {"name": "split_2", "total": total, "displays": 7})]),
        ({**form, "split_3.1.width": "abc"}, [("wall_err_value", {"where": "split_3 1 width"})]),
    )  # fmt: skip
    for data, wants in cases:
        r = admin.post("/dinding/admin/tata-letak?lang=id", data={**data, "csrf_token": token})
        assert r.status_code == 400
        assert all(html_escape(translate(key, "id", **fields)) in r.text for key, fields in wants), r.text
    assert runtime_of(app).wall.config.layouts["split_4"][0].views == ("clock", "feed")

    r = admin.post(
        "/dinding/admin/tata-letak/bawaan",
        data={"csrf_token": csrf(admin, "/dinding/admin")},
        follow_redirects=False,
    )
    assert r.status_code == 303 and runtime_of(app).wall.config.layouts["wide"][0].views == ("feed",)
    viewer = staff_client(app, "operator")
    assert (
        viewer.post(
            "/dinding/admin/tata-letak", data={**form, "csrf_token": csrf(viewer, "/staf")}
        ).status_code
        == 403
    )
    viewer.close()
    admin.close()
