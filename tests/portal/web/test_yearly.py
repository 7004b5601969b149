"""The yearly view of development proposals per budget year (issue 19 item 4): counts per stage and
rupiah estimated and funded, per agency and per kecamatan, on the page and in the CSV, checked against
sums computed here from randomly seeded proposals; who may read it; a bad year refused."""

from __future__ import annotations

import csv
import html
import io
import random
from collections import defaultdict

from fastapi import FastAPI
from fastapi.testclient import TestClient

from portal.models import Proposal
from portal.runtime import runtime_of
from portal.services import proposals
from tests.support.portal_app import staff_client

YEARS = (2027, 2028)


def seed(app: FastAPI, count: int = 40) -> list[Proposal]:
    """``count`` proposals of random agency, kecamatan, stage, year and amounts (some without)."""
    rng = random.Random(19)
    runtime = runtime_of(app)
    ref, now = runtime.reference, runtime.clock()
    made = []
    with runtime.sessions() as db:
        for i in range(count):
            kec = rng.choice(list(ref.kecamatan.values()))
            made.append(
                Proposal(
                    title=f"Usulan {i}",
                    kecamatan=kec.key,
                    kelurahan=next(iter(kec.kelurahan)),
                    agency=rng.choice(list(ref.agencies)),
                    category=rng.choice(list(ref.categories)),
                    estimated_cost=rng.choice([None, rng.randrange(1, 10**10)]),
                    funded_amount=rng.choice([None, rng.randrange(1, 10**10)]),
                    priority="medium",
                    channel="musrenbang_kelurahan",
                    budget_year=rng.choice(YEARS),
                    stage=rng.choice(proposals.ALL_STAGES),
                    stage_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
        db.add_all(made)
        db.commit()
        return [db.merge(p) for p in made]


def expected(seeded: list[Proposal], year: int) -> dict[tuple[str, str], list[int]]:
    """(group, key) -> [count, per stage..., estimated, funded], summed here from the seeded rows."""
    out: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * (len(proposals.ALL_STAGES) + 3))
    for p in seeded:
        if p.budget_year != year:
            continue
        for key in (("agency", p.agency), ("kecamatan", p.kecamatan), ("total", "TOTAL")):
            line = out[key]
            line[0] += 1
            line[1 + proposals.ALL_STAGES.index(p.stage)] += 1
            line[-2] += p.estimated_cost or 0
            line[-1] += p.funded_amount or 0
    return dict(out)


def test_yearly_view_and_csv_sum_the_seeded_proposals(app: FastAPI, client: TestClient) -> None:
    seeded = seed(app)
    admin = staff_client(app, "admin")
    for year in YEARS:
        want = expected(seeded, year)
        assert len({k for g, k in want if g == "agency"}) > 1 and want[("total", "TOTAL")][0] > 1
        r = admin.get(f"/staf/evaluasi/tahunan.csv?year={year}")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(r.text)))
        assert rows[0] == [
            "budget_year",
            "group",
            "key",
            "proposals",
            *proposals.ALL_STAGES,
            "estimated_idr",
            "funded_idr",
        ]
        got = {(row[1], row[2]): [int(v) for v in row[3:]] for row in rows[1:]}
        assert all(row[0] == str(year) for row in rows[1:])
        assert got == want
        page = admin.get(f"/staf/evaluasi/tahunan?year={year}")
        view = page.context["view"]
        assert view.year == year and view.total.count == want[("total", "TOTAL")][0]
        by_agency = {a.key: [a.count, a.estimated, a.funded] for a in view.agency}
        assert by_agency == {k: [v[0], v[-2], v[-1]] for (g, k), v in want.items() if g == "agency"}
        text = html.unescape(page.text)
        total = want[("total", "TOTAL")][-2]
        assert "Rp " + f"{total:,}".replace(",", ".") in text  # the estimated total, as Indonesians write it
    # without a year: the newest budget year that has proposals
    assert admin.get("/staf/evaluasi/tahunan").context["view"].year == max(YEARS)
    admin.close()


def test_yearly_view_readers_and_a_bad_year(app: FastAPI, client: TestClient) -> None:
    seed(app, 5)
    for role, agency in (
        ("viewer", None),
        ("operator", None),
        ("agency", "bappeda"),
        ("kepala_dinas", "bappeda"),
    ):
        who = staff_client(app, role, agency)
        assert who.get("/staf/evaluasi/tahunan").status_code == 200, role
        who.close()
    for role in ("agency", "kepala_dinas"):
        who = staff_client(app, role, "dinkes")
        assert who.get("/staf/evaluasi/tahunan").status_code == 403
        assert who.get("/staf/evaluasi/tahunan.csv").status_code == 403
        who.close()
    viewer = staff_client(app, "viewer")
    for bad in ("27", "20x7", "٢٠٢٧", "12345"):
        r = viewer.get(f"/staf/evaluasi/tahunan.csv?year={bad}&lang=en")
        assert r.status_code == 400 and "The budget year must be 4 digits." in html.unescape(r.text)
    r = viewer.get("/staf/evaluasi/tahunan?year=x&lang=id")
    assert r.status_code == 400 and "Tahun anggaran harus 4 angka" in html.unescape(r.text)
    viewer.close()
