"""Development proposals (usulan pembangunan): created or joined when a report closes as needs_budget, the
stage machine with its roles, cost estimates and their bad input, the public pages without personal data,
the report's status page and Open311 naming the stage, the council's aggregates."""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from portal.models import Proposal, ProposalEntry, ProposalReport
from portal.runtime import runtime_of
from portal.services import proposals
from tests.support.portal_app import FakeClock, add_user, csrf, login, report_id, staff_client, submit


def close_needs_budget(app: FastAPI, admin: TestClient, code: str, **extra: str) -> tuple[int, str]:
    """Verify and close report ``code`` as needs_budget (with the close form's ``extra`` fields); the
    answer's status code and text."""
    rid = report_id(app, code)
    token = csrf(admin, "/staf")
    admin.post(f"/staf/laporan/{rid}/verifikasi", data={"csrf_token": token})
    r = admin.post(
        f"/staf/laporan/{rid}/tutup",
        data={"csrf_token": token, "resolution": "needs_budget", "note": "Perlu anggaran", **extra},
        follow_redirects=False,
    )
    return r.status_code, html.unescape(r.text)


def post(who: TestClient, path: str, **data: str) -> tuple[int, str]:
    """A staff form posted with the session's CSRF token: the status code and the page's text."""
    r = who.post(path, data={"csrf_token": csrf(who, "/staf"), **data}, follow_redirects=False)
    return r.status_code, html.unescape(r.text)


def new_proposal(app: FastAPI, client: TestClient, admin: TestClient, **form: str) -> tuple[str, int]:
    """A report submitted (``form`` overrides), closed as needs_budget: its code and new proposal's id."""
    code = submit(client, None, **form)
    assert close_needs_budget(app, admin, code)[0] == 303
    return code, proposal_of(app, code)


def proposal_of(app: FastAPI, code: str) -> int:
    with runtime_of(app).sessions() as db:
        found = proposals.of_report(db, report_id(app, code))
        assert found is not None
        return found.id


def state(app: FastAPI, pid: int) -> tuple[str, int | None, int | None, int, int]:
    """stage, estimated cost, amount funded, budget year and the number of history entries."""
    with runtime_of(app).sessions() as db:
        p = db.get(Proposal, pid)
        assert p is not None
        n = db.scalar(select(func.count()).where(ProposalEntry.proposal_id == pid)) or 0
        return p.stage, p.estimated_cost, p.funded_amount, p.budget_year, n


@pytest.fixture
def admin(app: FastAPI) -> Iterator[TestClient]:
    c = staff_client(app, "admin")
    yield c
    c.close()


def test_needs_budget_creates_a_proposal_and_the_next_report_joins_it(
    app: FastAPI, client: TestClient, admin: TestClient
) -> None:
    first = submit(client, title="Jalan Gatot Subroto berlubang")
    assert close_needs_budget(app, admin, first)[0] == 303
    pid = proposal_of(app, first)
    second = submit(client, title="Lubang di Jl. Gatot Subroto dekat sekolah")
    assert close_needs_budget(app, admin, second, proposal=str(pid))[0] == 303
    assert proposal_of(app, second) == pid
    assert f'href="/staf/usulan/{pid}"' in admin.get(f"/staf/laporan/{report_id(app, second)}").text
    with runtime_of(app).sessions() as db:
        p = db.get(Proposal, pid)
        assert p is not None
        assert (p.title, p.kelurahan, p.kecamatan, p.agency, p.stage) == (
            "Jalan Gatot Subroto berlubang",
            "tangsi",
            "binjai_kota",
            "bappeda",
            "proposed",
        )
        assert p.budget_year == 2027  # the clock is in November 2026: next year's budget
        assert [e.kind for e in p.entries] == ["created", "linked", "linked"]
    # the reporter's status page names the proposal's stage
    page = client.get(f"/laporan/{first}")
    assert f'href="/usulan/{pid}"' in page.text and "Diusulkan" in page.text
    # an unknown proposal number is refused with the reason, and the report stays open
    third = submit(client)
    status, text = close_needs_budget(app, admin, third, proposal="999999")
    assert status == 400 and "Nomor usulan tidak dikenal." in text
    assert admin.get(f"/staf/laporan/{report_id(app, third)}").context["report"].status == "verified"
    with runtime_of(app).sessions() as db:
        assert db.scalar(select(func.count()).select_from(ProposalReport)) == 2


def test_a_confidential_report_needs_a_title_of_its_own_and_is_never_shown(
    app: FastAPI, client: TestClient, admin: TestClient
) -> None:
    code = submit(client, privacy="confidential", title="Pungli di kantor kelurahan")
    status, text = close_needs_budget(app, admin, code)
    assert status == 400 and "Tulis judul usulan sendiri" in text  # its title would become public
    with runtime_of(app).sessions() as db:
        assert db.scalar(select(func.count()).select_from(Proposal)) == 0
    rid = report_id(app, code)
    r = admin.post(
        f"/staf/laporan/{rid}/tutup",
        data={
            "csrf_token": csrf(admin, "/staf"),
            "resolution": "needs_budget",
            "proposal_title": "Perbaikan layanan kantor kelurahan",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    pid = proposal_of(app, code)
    public = client.get(f"/usulan/{pid}")
    assert public.status_code == 200
    assert "Perbaikan layanan kantor kelurahan" in public.text
    assert code not in public.text and "Pungli" not in public.text
    assert public.context["reports"] == []


def test_public_pages_show_the_timeline_and_public_reports_never_personal_data(
    app: FastAPI, client: TestClient, admin: TestClient
) -> None:
    code, pid = new_proposal(app, client, admin, title="Drainase Jl. Sudirman", contact_name="Siti Aminah")
    hidden = submit(client, privacy="confidential", title="Laporan rahasia warga")
    close_needs_budget(app, admin, hidden, proposal=str(pid))
    officer = add_user(app, "agency", agency="bappeda")
    bappeda = TestClient(app)
    login(bappeda, officer)
    r = bappeda.post(
        f"/staf/usulan/{pid}/tahap",
        data={"csrf_token": csrf(bappeda, "/staf"), "stage": "musrenbang_kelurahan", "note": "Disepakati"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = client.get(f"/usulan/{pid}")
    text = html.unescape(page.text)
    assert [e.stage for e in page.context["timeline"]] == ["proposed", "musrenbang_kelurahan"]
    assert "Musrenbang kelurahan" in text and "Disepakati" in text
    assert code in text and hidden not in text and "Laporan rahasia" not in text
    for personal in ("Siti Aminah", "siti@example.id", "081234567890", officer.username):
        assert personal not in text
    assert "Badan Perencanaan Pembangunan Daerah (Bappeda)" in text  # who decided: the agency
    # the list and its filters
    assert [p.id for p in client.get("/usulan").context["proposals"]] == [pid]
    assert client.get("/usulan?kecamatan=binjai_utara").context["proposals"] == []
    assert client.get("/usulan?stage=musrenbang_kelurahan&year=2027&agency=bappeda").context["proposals"]
    assert client.get("/usulan?stage=rkpd").context["proposals"] == []
    assert client.get("/usulan/4242").status_code == 404
    assert client.get("/usulan?lang=en").status_code == 200
    bappeda.close()


def test_stage_machine_by_role_with_every_refusal_storing_nothing(
    app: FastAPI, client: TestClient, admin: TestClient, clock: FakeClock
) -> None:
    _code, pid = new_proposal(app, client, admin, contact_email="")
    bappeda = staff_client(app, "agency", agency="bappeda")
    dinkes = staff_client(app, "agency", agency="dinkes")
    viewer = staff_client(app, "viewer")

    def move(who: TestClient, stage: str, lang: str = "id", **extra: str) -> tuple[int, str]:
        return post(who, f"/staf/usulan/{pid}/tahap?lang={lang}", stage=stage, **extra)

    assert move(bappeda, "musrenbang_kelurahan", note="Musrenbang 12 Januari")[0] == 303
    before = state(app, pid)
    # skipping a stage, going back, the same stage: refused for Bappeda, with the reason, nothing stored
    status, text = move(bappeda, "rkpd")
    assert status == 409 and "hanya boleh oleh admin" in text
    status, text = move(bappeda, "proposed", lang="en")
    assert status == 409 and "only an admin may skip stages or go back" in text
    assert move(bappeda, "musrenbang_kelurahan")[0] == 409
    assert move(bappeda, "nonsense")[0] == 400
    # other agencies and viewers may not move proposals at all
    assert move(dinkes, "musrenbang_kecamatan")[0] == 403
    assert move(viewer, "musrenbang_kecamatan")[0] == 403
    assert state(app, pid) == before
    # reject and defer need a reason; defer a later year
    status, text = move(bappeda, "rejected")
    assert status == 400 and "Tulis alasan" in text
    status, text = move(bappeda, "deferred", note="Anggaran habis", budget_year="2027")
    assert status == 400 and "tahun anggaran yang lebih akhir" in text
    assert move(bappeda, "deferred", note="Anggaran habis", budget_year="20x8")[0] == 400
    assert state(app, pid) == before
    clock.advance(hours=1)
    assert move(bappeda, "deferred", note="Anggaran habis", budget_year="2028")[0] == 303
    assert state(app, pid)[0::3] == ("deferred", 2028)
    # a deferred proposal re-enters the cycle at its start
    assert move(bappeda, "musrenbang_kecamatan")[0] == 409
    assert move(bappeda, "musrenbang_kelurahan")[0] == 303
    # the admin may skip and go back
    assert move(admin, "kua_ppas", note="Koreksi")[0] == 303
    # APBD needs the amount funded, checked like a cost
    for bad, message in (("", "Tulis jumlah dana"), ("-5", "lebih dari nol"), ("lima juta", "angka bulat")):
        status, text = move(bappeda, "apbd", funded=bad)
        assert status == 400 and message in text, bad
    assert move(bappeda, "apbd", funded="Rp 1.250.000.000")[0] == 303
    assert state(app, pid)[2] == 1_250_000_000
    assert move(bappeda, "executed")[0] == 303
    assert move(bappeda, "rejected", note="x")[0] == 409  # done is done, but for an admin
    assert move(admin, "apbd", funded="1250000000", note="Belum selesai")[0] == 303
    with runtime_of(app).sessions() as db:
        p = proposals.get(db, pid)
        stages = [(e.stage, e.actor.role if e.actor else None) for e in p.entries if e.kind == "stage"]
        assert stages == [
            ("musrenbang_kelurahan", "agency"),
            ("deferred", "agency"),
            ("musrenbang_kelurahan", "agency"),
            ("kua_ppas", "admin"),
            ("apbd", "agency"),
            ("executed", "agency"),
            ("apbd", "admin"),
        ]
        assert p.entries[-1].body == "Belum selesai" and p.entries[-1].amount == 1_250_000_000
    for c in (bappeda, dinkes, viewer):
        c.close()


def test_cost_estimates_by_the_agency_refuse_bad_amounts_in_the_users_language(
    app: FastAPI, client: TestClient, admin: TestClient
) -> None:
    _code, pid = new_proposal(app, client, admin, category="kesehatan")
    dinkes = staff_client(app, "agency", agency="dinkes")
    other = staff_client(app, "agency", agency="dpmptsp")
    viewer = staff_client(app, "viewer")
    ceiling = runtime_of(app).settings.proposal_cost_ceiling

    def cost(who: TestClient, value: str, lang: str = "id") -> tuple[int, str]:
        return post(who, f"/staf/usulan/{pid}/biaya?lang={lang}", cost=value)

    before = state(app, pid)
    for value, lang, message in (
        ("-150000000", "id", "Jumlah rupiah harus lebih dari nol."),
        ("0", "en", "The amount in rupiah must be more than zero."),
        ("seratus juta", "id", "harus berupa angka bulat"),
        ("1,5", "en", "must be a whole number"),
        ("1.50.000", "id", "harus berupa angka bulat"),
        (str(ceiling + 1), "id", "melebihi batas yang ditetapkan"),
        ("9" * 40, "en", "above the configured ceiling"),
    ):
        status, text = cost(dinkes, value, lang)
        assert status == 400 and message in text, value
    assert cost(other, "1000")[0] == 403
    assert cost(viewer, "1000")[0] == 403
    assert state(app, pid) == before
    assert cost(dinkes, "Rp 150.000.000")[0] == 303
    assert cost(admin, str(ceiling))[0] == 303
    stage, estimated, _, _, entries = state(app, pid)
    assert (stage, estimated, entries) == ("proposed", ceiling, before[4] + 2)
    # the agency sees its own proposals, not others'
    assert other.get(f"/staf/usulan/{pid}").status_code == 404
    assert dinkes.get(f"/staf/usulan/{pid}").status_code == 200
    for c in (dinkes, other, viewer):
        c.close()


def test_the_council_sees_aggregates_per_kecamatan_and_agency(
    app: FastAPI, client: TestClient, admin: TestClient
) -> None:
    for kelurahan, category in (
        ("tangsi", "kesehatan"),
        ("tangsi", "perencanaan_pembangunan"),
        ("damai", "kesehatan"),
    ):
        close_needs_budget(app, admin, submit(client, kelurahan=kelurahan, category=category))
    with runtime_of(app).sessions() as db:
        ids = list(db.scalars(select(Proposal.id).order_by(Proposal.id)))
    admin.post(f"/staf/usulan/{ids[0]}/biaya", data={"csrf_token": csrf(admin, "/staf"), "cost": "200000000"})
    viewer = staff_client(app, "viewer")
    page = viewer.get("/staf/usulan")
    assert page.status_code == 200 and page.context["proposals"] == []  # aggregates only
    by_kec = {a.key: (a.count, a.estimated, dict(a.stages)) for a in page.context["aggregates"]["kecamatan"]}
    assert by_kec == {
        "binjai_kota": (2, 200_000_000, {"proposed": 2}),
        "binjai_utara": (1, 0, {"proposed": 1}),
    }
    by_agency = {a.key: a.count for a in page.context["aggregates"]["agency"]}
    assert by_agency == {"bappeda": 1, "dinkes": 2}
    assert viewer.get(f"/staf/usulan/{ids[0]}").status_code == 404
    assert viewer.get("/staf/usulan?year=2031").context["aggregates"] == {"kecamatan": [], "agency": []}
    assert len(admin.get("/staf/usulan").context["proposals"]) == 3
    viewer.close()


def test_open311_status_notes_name_the_proposal_stage(
    app: FastAPI, client: TestClient, admin: TestClient
) -> None:
    code, pid = new_proposal(app, client, admin)
    bappeda = staff_client(app, "agency", agency="bappeda")
    bappeda.post(
        f"/staf/usulan/{pid}/tahap",
        data={"csrf_token": csrf(bappeda, "/staf"), "stage": "musrenbang_kelurahan"},
    )
    one = client.get(f"/open311/v2/requests/{code}.json").json()[0]
    assert (
        one["status_notes"] == "needs_budget; usulan pembangunan: Musrenbang kelurahan (musrenbang_kelurahan)"
    )
    listed = client.get("/open311/v2/requests.json").json()
    assert [r["status_notes"] for r in listed if r["service_request_id"] == code] == [one["status_notes"]]
    other = submit(client)
    assert client.get(f"/open311/v2/requests/{other}.json").json()[0]["status_notes"] == "submitted"
    bappeda.close()


def test_the_planning_calendar_is_data_and_checked(tmp_path: Path) -> None:
    cycle = proposals.load_cycle(runtime_settings_cycle())
    assert cycle.when("musrenbang_kelurahan", 2027) == (2026, (1,))
    assert cycle.when("proposed", 2027) is None
    bad = tmp_path / "cycle.yaml"
    bad.write_text("stages:\n  proposed: {months: []}\n  rkpd: {months: [13]}\n  sidang: {months: [1]}\n")
    with pytest.raises(ValueError) as err:
        proposals.load_cycle(bad)
    text = str(err.value)
    assert "missing stage musrenbang_kelurahan" in text and "unknown stage sidang" in text
    assert "rkpd: month 13 is not 1-12" in text


def runtime_settings_cycle() -> Path:
    from portal.config import Settings

    return Settings.model_fields["planning_cycle_file"].default  # type: ignore[no-any-return]


def test_the_evaluation_budget_view_and_its_csv(app: FastAPI, client: TestClient, admin: TestClient) -> None:
    """Of the month's needs-budget closures: how many became proposals, how many proposals reached each
    stage, rupiah estimated and funded; per agency, a total, and a CSV for Bappeda."""
    road = [submit(client, title="Jalan rusak"), submit(client, title="Jalan rusak lagi")]
    close_needs_budget(app, admin, road[0])
    pid = proposal_of(app, road[0])
    close_needs_budget(app, admin, road[1], proposal=str(pid))
    close_needs_budget(app, admin, submit(client, category="kesehatan"))
    post(admin, f"/staf/usulan/{pid}/biaya", cost="200.000.000")
    bappeda = staff_client(app, "agency", agency="bappeda")
    assert post(bappeda, f"/staf/usulan/{pid}/tahap", stage="musrenbang_kelurahan")[0] == 303
    assert post(admin, f"/staf/usulan/{pid}/tahap", stage="apbd", funded="150000000")[0] == 303
    page = admin.get("/staf/evaluasi?month=2026-11")
    rows = {r.agency: r for r in page.context["budget"]}
    assert set(rows) == {"bappeda", "dinkes"}
    road_row = rows["bappeda"]
    assert (road_row.closures, road_row.with_proposal, road_row.proposals) == (2, 2, 1)
    assert {s: n for s, n in road_row.reached.items() if n} == {
        "proposed": 1,
        "musrenbang_kelurahan": 1,
        "apbd": 1,
    }
    assert (road_row.estimated, road_row.funded) == (200_000_000, 150_000_000)
    total = page.context["budget_total"]
    assert (total.closures, total.proposals, total.reached["proposed"], total.funded) == (
        3,
        2,
        2,
        150_000_000,
    )
    assert "Rp 150.000.000" in page.text
    r = bappeda.get("/staf/evaluasi/anggaran.csv?month=2026-11")
    assert (
        r.status_code == 200 and 'filename="usulan-anggaran-2026-11.csv"' in r.headers["content-disposition"]
    )
    lines = r.text.splitlines()
    header = lines[0].split(",")
    assert header[:4] == ["agency", "closures", "with_proposal", "proposals"]
    assert header[-2:] == ["estimated_idr", "funded_idr"] and "reached_musrenbang_kota" in header
    last = dict(zip(header, lines[-1].split(","), strict=True))
    assert last["agency"] == "TOTAL" and last["closures"] == "3" and last["funded_idr"] == "150000000"
    assert len(lines) == 4  # two agencies and the total
    # another month has none; an agency other than Bappeda may not download it
    assert admin.get("/staf/evaluasi?month=2026-10").context["budget"] == []
    dinkes = staff_client(app, "agency", agency="dinkes")
    assert dinkes.get("/staf/evaluasi/anggaran.csv").status_code == 403
    assert admin.get("/staf/evaluasi/anggaran.csv?month=2026-13").status_code == 400
    for c in (bappeda, dinkes):
        c.close()


def test_bappeda_edits_priority_channel_and_agency_with_history(
    app: FastAPI, client: TestClient, admin: TestClient
) -> None:
    _code, pid = new_proposal(app, client, admin)
    bappeda = staff_client(app, "agency", agency="bappeda")
    dinkes = staff_client(app, "agency", agency="dinkes")
    good = {"title": "Normalisasi drainase", "priority": "high", "channel": "pokir_dprd", "agency": "bappeda"}
    before = state(app, pid)
    for bad, message in (
        ({"priority": "urgent"}, "Prioritas tidak dikenal."),
        ({"channel": "twitter"}, "Jalur usulan tidak dikenal."),
        ({"title": "  "}, "Judul usulan wajib diisi."),
        ({"agency": "nasa"}, "Dinas tidak dikenal."),
    ):
        status, text = post(bappeda, f"/staf/usulan/{pid}/ubah", **{**good, **bad})
        assert status == 400 and message in text, bad
    assert post(dinkes, f"/staf/usulan/{pid}/ubah", **good)[0] == 403
    assert state(app, pid) == before
    assert post(bappeda, f"/staf/usulan/{pid}/ubah", **good)[0] == 303
    with runtime_of(app).sessions() as db:
        p = proposals.get(db, pid)
        assert (p.title, p.priority, p.channel) == ("Normalisasi drainase", "high", "pokir_dprd")
        assert p.entries[-1].kind == "edited" and "priority: medium -> high" in p.entries[-1].body
    page = client.get(f"/usulan/{pid}").text
    assert "Pokok-pokok pikiran DPRD" in page and "Tinggi" in page
    for c in (bappeda, dinkes):
        c.close()
