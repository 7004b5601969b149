"""No raw key on a staff page: categories, agencies, statuses, resolutions, roles and privacy levels are
shown by their human names (portal/web/labels.py), in both languages. The keys are what the database
stores; the test reads each page's visible text (attribute values, i.e. form values, are not shown)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from fastapi import FastAPI
from fastapi.testclient import TestClient

from bcc_contract.reports import RESOLUTIONS, STATUSES
from portal.models import ROLES
from portal.runtime import runtime_of
from tests.portal.web.evaluation_data import fill_month
from tests.support.portal_app import FakeClock, add_user, report_id, submit


class _Visible(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.skip = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.skip += tag in ("script", "style", "code")

    def handle_endtag(self, tag: str) -> None:
        self.skip -= tag in ("script", "style", "code")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def text_nodes(html: str) -> list[str]:
    parser = _Visible()
    parser.feed(html)
    return [part.strip() for part in parser.parts if part.strip()]


# Keys that are also ordinary Indonesian words ("usulan anggaran": budget proposal): a raw key there is a
# text node that is the key alone (a table cell, a label), not the word inside a sentence.
ORDINARY_WORDS = frozenset({"anggaran"})


def raw_keys(app: FastAPI) -> set[str]:
    ref = runtime_of(app).reference
    keys = {*ref.categories, *ref.agencies, *STATUSES, *RESOLUTIONS, *ROLES}
    return keys | {"public", "anonymous", "confidential"}


def test_staff_pages_show_names_never_keys(app: FastAPI, client: TestClient, clock: FakeClock) -> None:
    admin = fill_month(app, client, clock)
    try:
        ref = runtime_of(app).reference
        codes = [submit(client, category=c, privacy=p) for c, p in zip(ref.categories, ("anonymous",
                 "confidential", "public", "public", "public"), strict=False)]  # fmt: skip
        add_user(app, "agency", "dinkes")
        add_user(app, "viewer")
        add_user(app, "kepala_dinas", "dinkes")
        pages = ["/staf", "/staf?status=", "/staf/evaluasi?month=2026-11", "/staf/akun", "/staf/akses-kontak"]
        pages += ["/konsol/audit", "/staf/dinas", "/staf/evaluasi/tahunan"]
        pages += [f"/staf/dinas/{agency}" for agency in ref.agencies]
        pages += [f"/staf/laporan/{report_id(app, code)}" for code in codes]
        pages += [f"/staf/laporan/{i}" for i in range(1, 8)]  # the evaluation month's, every outcome
        alternatives = "|".join(sorted(raw_keys(app), key=len, reverse=True))
        pattern = re.compile(r"(?<![\w-])(" + alternatives + r")(?![\w-])")
        found: list[str] = []
        for lang in ("id", "en"):
            for path in pages:
                r = admin.get(path + ("&" if "?" in path else "?") + f"lang={lang}")
                assert r.status_code == 200, (path, r.status_code)
                for node in text_nodes(r.text):
                    for key in pattern.findall(node):
                        if key in ORDINARY_WORDS and node != key:
                            continue
                        # English words that are also keys (closed, verified ...) are English there.
                        if lang == "id" or "_" in key:
                            found.append(f"{lang} {path}: {key} in {node[:60]!r}")
        assert not found, "\n".join(found)
    finally:
        admin.close()
