"""The web app's server side: manifest and service worker, offline drafts with their idempotency key
(a replay returns the first report's code and key, concurrent copies store one report), the location
lookup and points outside Binjai (docs/portal.md, "Web app")."""

from __future__ import annotations

import asyncio
import io
import re
import secrets

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from portal.models import Report
from portal.runtime import runtime_of
from portal.services import reporter_keys
from tests.support.portal_app import LiveServer, csrf, jpeg, report_form


def draft(client: TestClient, key: str, photos: list[bytes] | None = None, **fields: str) -> httpx.Response:
    data = {"csrf_token": csrf(client), "draft_key": key, **report_form(**fields)}
    files = [("photos", (f"p{i}.jpg", p, "image/jpeg")) for i, p in enumerate(photos or [])]
    r: httpx.Response = client.post("/lapor/draf", data=data, files=files or None)
    return r


def count(app: FastAPI, **where: object) -> int:
    with runtime_of(app).sessions() as db:
        query = select(func.count()).select_from(Report).filter_by(**where)
        return int(db.scalar(query) or 0)


def test_manifest_icons_and_service_worker(client: TestClient) -> None:
    m = client.get("/manifest.webmanifest")
    assert m.headers["content-type"].startswith("application/manifest+json")
    doc = m.json()
    assert doc["name"] == "Lapor Binjai" and doc["start_url"] == "/" and doc["display"] == "standalone"
    assert doc["lang"] == "id" and client.get("/manifest.webmanifest?lang=en").json()["lang"] == "en"
    purposes = set()
    for icon in doc["icons"]:
        r = client.get(icon["src"])
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        size = Image.open(io.BytesIO(r.content)).size
        assert f"{size[0]}x{size[1]}" == icon["sizes"]
        purposes.add(icon["purpose"])
    assert purposes == {"any", "maskable"}
    sw = client.get("/sw.js")
    assert sw.headers["content-type"].startswith("text/javascript") and "addEventListener('fetch'" in sw.text
    page = client.get("/").text
    assert '<link rel="manifest" href="/manifest.webmanifest">' in page
    assert re.search(r'<meta name="description" content="[^"]{50,}">', page)
    assert "Disallow: /staf" in client.get("/robots.txt").text
    headers = client.get("/lapor").headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "geolocation=(self)" in headers["permissions-policy"]


def test_a_replayed_draft_returns_the_first_code_and_key(app: FastAPI, client: TestClient) -> None:
    key = secrets.token_hex(16)
    first = draft(client, key, photos=[jpeg(800, 600)], title="Lampu jalan mati")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["replayed"] is False and body["code"].startswith("BJ-")
    assert reporter_keys.well_formed(body["key"]) and body["key_url"].endswith(body["key"])
    assert f"{body['code']}:{body['key']}" in first.headers["set-cookie"]  # kept like a form submission's
    # the retry of a flaky connection (the same key; what it carries is not looked at again)
    again = draft(client, key, photos=[jpeg(800, 600)], title="Lampu jalan mati (lagi)")
    assert again.status_code == 200
    assert again.json() == {**body, "replayed": True}
    assert count(app) == 1 and count(app, title="Lampu jalan mati") == 1
    with runtime_of(app).sessions() as db:
        report = db.scalars(select(Report)).one()
        # the database keeps hashes only: of the draft key and of the reporter's key, never either key
        assert report.draft_hash == reporter_keys.draft_hash(key) and key not in report.draft_hash
        assert reporter_keys.matches(body["key"], report.secret_hash)
        assert len(report.photos) == 1
    # the key the replay returned opens the report for another browser
    other = TestClient(app)
    r = other.get(body["key_url"], follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/laporan/{body['code']}"
    # another draft is another report
    assert draft(client, secrets.token_hex(16)).json()["code"] != body["code"]
    assert count(app) == 2


def test_drafts_are_checked_like_the_form(app: FastAPI, client: TestClient) -> None:
    for bad in ("", "abc", "G" * 32, secrets.token_hex(16).upper(), secrets.token_hex(17)):
        r = draft(client, bad)
        assert r.status_code == 400 and "errors" in r.json(), bad
    r = draft(client, secrets.token_hex(16), title="", lat="3.6", lon="98.55")
    assert r.status_code == 400
    assert r.json()["errors"] == {
        "title": "Judul wajib diisi.",
        "lat": "Lokasi ini berada di luar Kota Binjai. Laporan hanya untuk wilayah Kota Binjai; isi titik "
        "lokasi di Binjai atau kosongkan.",
    }
    big = draft(client, secrets.token_hex(16), photos=[b"\xff\xd8" + b"x" * (5 * 1024 * 1024)])
    assert big.json() == {"errors": {"photos": "Foto terlalu besar (maksimal 5 MB)."}}
    assert count(app) == 0


def test_the_form_refuses_a_point_outside_binjai(app: FastAPI, client: TestClient) -> None:
    data = {
        "csrf_token": csrf(client),
        **report_form(lat="3.6000", lon="98.5500"),
    }  # in the box, not the city
    r = client.post("/lapor?lang=en", data=data, follow_redirects=False)
    assert r.status_code == 400 and "This location is outside the city of Binjai" in r.text
    assert count(app) == 0


def test_location_proposes_the_kelurahan(client: TestClient) -> None:
    r = client.get("/lapor/lokasi", params={"lat": "3.6001", "lon": "98.4854"})
    assert r.json() == {"kelurahan": "satria", "name": "Satria", "kecamatan": "Binjai Kota"}
    r = client.get("/lapor/lokasi", params={"lat": "3.6115", "lon": "98.4855"})
    assert r.json()["kelurahan"] == "limau_sundai"
    for lat, lon in (("3.6", "98.55"), ("3.5952", "98.6744"), ("-6.2", "106.8")):  # east of the city; Jakarta
        r = client.get("/lapor/lokasi", params={"lat": lat, "lon": lon, "lang": "en"})
        assert r.status_code == 400 and r.json()["error"].startswith("This location is outside"), (lat, lon)
    r = client.get("/lapor/lokasi", params={"lat": "x", "lon": ""})
    assert r.status_code == 400 and r.json()["error"] == "Titik lokasi harus angka di wilayah Binjai."


def test_concurrent_copies_of_one_draft_store_one_report(app: FastAPI) -> None:
    key = secrets.token_hex(16)

    async def run(base: str) -> list[dict[str, object]]:
        async with httpx.AsyncClient(base_url=base) as http:
            page = await http.get("/lapor")
            match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert match is not None
            data = {"csrf_token": match.group(1), "draft_key": key, **report_form()}
            answers = await asyncio.gather(*(http.post("/lapor/draf", data=data) for _ in range(6)))
        assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers]
        return [a.json() for a in answers]

    with LiveServer(app) as server:
        bodies = asyncio.run(run(server.url))
        assert count(app) == 1
    assert len({(b["code"], b["key"]) for b in bodies}) == 1
    assert sum(not b["replayed"] for b in bodies) == 1
