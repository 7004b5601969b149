"""The report vocabulary of the contract travels the whole way: every event name and every category key
(including one added to the categories file) is stored by the recorder's schema in a real InfluxDB and
drawn by the "Citizen reports" dashboard's queries, with no list of them kept anywhere else."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
from grafanalib._gen import DashboardEncoder

from bcc_contract.reports import CATEGORIES_FILE, EVENTS, category_keys, event_payload
from bcc_contract.topics import Topics
from devices.loader import DEMO_SITE, load_site
from grafana import citizen_reports
from iot_gateway.recorder.influxd import InfluxdProcess
from iot_gateway.recorder.schema import REPORTS_RP, Schema
from tests.support.influx import influxql


@dataclass(frozen=True)
class Facts:
    """A report as an event describes it (the ReportFacts of the contract)."""

    code: str
    category: str
    created_at: datetime
    agency: str | None = "dinkes"
    kecamatan: str = "binjai_kota"
    privacy: str = "public"
    status: str = "submitted"
    resolution: str | None = None
    verify_late: bool = False
    respond_late: bool = False


def with_new_category(tmp_path: Path) -> tuple[str, ...]:
    """The shipped categories file plus one category a city adds later."""
    text = CATEGORIES_FILE.read_text(encoding="utf-8").replace(
        "categories:\n",
        "categories:\n  lingkungan_hidup:\n    agency: dinkes\n"
        "    name: {id: Lingkungan hidup, en: Environment}\n"
        "    description: {id: Sampah dan kebersihan., en: Waste and cleanliness.}\n"
        "    group: {id: Layanan, en: Services}\n",
        1,
    )
    path = tmp_path / "categories.yaml"
    path.write_text(text, encoding="utf-8")
    return category_keys(path)


def series_tags(url: str, query: str, tag: str) -> set[str]:
    return {s["tags"][tag] for s in influxql(url, query) if any(v[1] for v in s["values"])}


def test_the_new_category_is_read_from_the_file(tmp_path: Path) -> None:
    keys = with_new_category(tmp_path)
    assert "lingkungan_hidup" in keys and set(category_keys()) < set(keys)


async def test_every_event_and_category_is_stored_and_drawn(influxd: InfluxdProcess, tmp_path: Path) -> None:
    categories = with_new_category(tmp_path)
    schema = Schema(load_site(DEMO_SITE), Topics(), categories)
    now = datetime.now(UTC)
    lines: list[str] = []
    for i, category in enumerate(categories):
        for j, event in enumerate(EVENTS):
            facts = Facts(f"BJI-V-{i}", category, now - timedelta(hours=2))
            payload = orjson.dumps(event_payload(event, facts, now - timedelta(minutes=j)))
            record = schema.convert(Topics().report_events, payload, time.time_ns())
            assert record.problem is None, (event, category, record.problem)
            assert record.rp == REPORTS_RP
            lines += [text for text, _ in record.lines]
    # a confidential report's closure: stored and drawn in "Latest closures", without its code
    secret = Facts("BJI-RAHASIA", categories[0], now - timedelta(hours=2), privacy="confidential")
    closed = orjson.dumps(
        event_payload("closed", replace(secret, status="closed"), now - timedelta(seconds=30))
    )
    lines += [text for text, _ in schema.convert(Topics().report_events, closed, time.time_ns()).lines]
    rp = f'CREATE RETENTION POLICY "{REPORTS_RP}" ON "bcc" DURATION INF REPLICATION 1'
    async with httpx.AsyncClient(base_url=influxd.url) as http:
        for q in ("CREATE DATABASE bcc", rp):
            (await http.post("/query", params={"q": q})).raise_for_status()
        r = await http.post("/write", params={"db": "bcc", "rp": REPORTS_RP}, content="\n".join(lines))
    assert r.status_code == 204, r.text

    dashboard = json.loads(json.dumps(citizen_reports.build(categories).to_json_data(), cls=DashboardEncoder))
    variable = dashboard["templating"]["list"][0]
    assert set(variable["query"].split(",")) == set(categories)
    alternation = f"/^({'|'.join(categories)})$/"
    queries = {
        p["title"]: p["targets"][0]["query"]
        .replace("$timeFilter", "time > now() - 1d")
        .replace("/^$category$/", alternation)
        for p in dashboard["panels"]
    }
    drawn_categories = series_tags(influxd.url, queries["Submissions per day by category"], "category")
    drawn_events = series_tags(influxd.url, queries["Report events per day by kind"], "event")
    assert drawn_categories == set(categories)
    assert drawn_events == set(EVENTS)
    (table,) = influxql(influxd.url, queries["Latest closures"])
    rows = [dict(zip(table["columns"], v, strict=True)) for v in table["values"]]
    assert len(rows) == len(categories) + 1 and "BJI-RAHASIA" not in json.dumps(rows)
    assert sum(r["report"] is None for r in rows) == 1
