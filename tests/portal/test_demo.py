"""The demo helper seeds reports, serves the portal on a free port and hands out working logins."""

from __future__ import annotations

from pathlib import Path

import httpx

from portal.demo import start_demo_portal


async def test_demo_portal_serves_seeded_reports(tmp_path: Path) -> None:
    portal = await start_demo_portal(tmp_path)
    try:
        async with httpx.AsyncClient(base_url=portal.url) as client:
            listed = await client.get("/open311/v2/requests.json")
            # not the confidential or unverified, nor those older than Open311's 90 days
            assert listed.status_code == 200 and len(listed.json()) == 6
            assert (await client.get("/daftar")).status_code == 200
            # development proposals in several stages, from a needs-budget report each
            page = (await client.get("/usulan")).text
            for stage in ("Diusulkan", "Musrenbang kecamatan", "Didanai APBD", "Ditunda", "Dilaksanakan"):
                assert stage in page, stage
            budget = [r for r in listed.json() if r["status_notes"].startswith("needs_budget")]
            stages = sorted(r["status_notes"].split("(")[-1] for r in budget)
            assert stages == ["musrenbang_kecamatan)", "proposed)"]
            # the health agency's head logs in and lands on its agency's page (read-only, its reports)
            head = next(label for label in portal.logins if label.startswith("agency head "))
            user, password = portal.logins[head]
            agency = head.removeprefix("agency head ")
            login = await client.get("/staf/masuk")
            token = login.text.split('name="csrf_token" value="')[1].split('"')[0]
            form = {"username": user, "password": password, "csrf_token": token}
            answer = await client.post("/staf/masuk", data=form, follow_redirects=True)
            assert answer.status_code == 200 and f'href="/staf/dinas/{agency}"' in answer.text, answer.text
            assert (await client.get(f"/staf/dinas/{agency}")).status_code == 200
        assert {"admin 1", "admin 2", "viewer"} <= set(portal.logins)
        assert len({pw for _u, pw in portal.logins.values()}) == len(portal.logins)  # all generated
    finally:
        await portal.stop()
