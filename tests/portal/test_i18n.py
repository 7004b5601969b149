"""The portal's texts come from gettext catalogues (portal/locale, docs/portal.md "Languages"): both are
complete, none fuzzy, the compiled files match them, every message the code and templates use (found by
Babel's own extraction) is in them, and every page, crawled as each kind of visitor in each language, shows
no raw message key and no text of the other language."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from portal.i18n import LOCALE_DIR, catalogue_paths, compile_po, translate
from portal.models import User
from portal.reference import LANGS
from portal.runtime import runtime_of
from portal.services import users
from tests.portal.web.test_names import text_nodes
from tests.support.portal_app import FakeClock, add_user, login, report_id, submit
from tests.support.portal_routes import api_routes

ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = {"t": None, "tn": (1, 2), "translate": None, "translate_n": (1, 2)}
FIELD = re.compile(r"\{(\w*)\}")


def load(lang: str) -> Catalog:
    with catalogue_paths(lang)[0].open("rb") as f:
        return read_po(f, locale=lang)


def messages(catalog: Catalog) -> dict[str, tuple[str, ...]]:
    """msgid (the singular's, for plurals) -> its text(s)."""
    out: dict[str, tuple[str, ...]] = {}
    for m in catalog:
        if not m.id:
            continue
        key = m.id if isinstance(m.id, str) else m.id[0]
        out[key] = (m.string,) if isinstance(m.string, str) else tuple(m.string or ())
    return out


def test_every_language_has_its_catalogue_complete_and_nothing_fuzzy() -> None:
    assert {p.name for p in LOCALE_DIR.iterdir() if p.is_dir()} == set(LANGS)
    keys: dict[str, set[str]] = {}
    for lang in LANGS:
        catalog = load(lang)
        assert not catalog.fuzzy, f"{lang}: the catalogue's header is fuzzy"
        assert catalog.num_plurals == get_plural(lang).num_plurals, catalog.plural_forms  # CLDR's count
        for m in catalog:
            if not m.id:
                continue
            assert not m.fuzzy, f"{lang}: {m.id} is fuzzy"
            forms = (m.string,) if isinstance(m.string, str) else tuple(m.string or ())
            if not isinstance(m.id, str):
                assert len(forms) == catalog.num_plurals, f"{lang}: {m.id} has {len(forms)} plural forms"
            assert all(f.strip() for f in forms), f"{lang}: {m.id} is untranslated"
        keys[lang] = set(messages(catalog))
    first = keys[LANGS[0]]
    for lang in LANGS[1:]:
        assert keys[lang] == first, (lang, sorted(keys[lang] ^ first))


def test_the_languages_fill_in_the_same_fields() -> None:
    texts = {lang: messages(load(lang)) for lang in LANGS}
    for key, forms in texts[LANGS[0]].items():
        want = set(FIELD.findall(forms[0]))
        for lang in LANGS[1:]:
            for form in texts[lang][key]:
                # {n} may be left out of a singular ("one hour") but no other field may differ
                assert set(FIELD.findall(form)) - {"n"} == want - {"n"}, (lang, key, form)


def test_compiled_catalogues_match_their_po_files() -> None:
    """``make locale`` (part of ``make venv``) compiled them; a .po edited since must be compiled again."""
    for lang in LANGS:
        po, mo = catalogue_paths(lang)
        assert mo.exists(), f"{mo} missing: run make locale"
        with mo.open("rb") as f:
            shipped = messages(read_mo(f))
        fresh = messages(read_mo(io.BytesIO(compile_po(po))))
        assert shipped == fresh, f"{mo} drifted from {po}: run make locale"


def extracted() -> Iterator[tuple[str, str]]:
    """(file, message id) of every literal message the code and templates use, by Babel's extraction
    with the project's babel.cfg method map and keywords."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as f:
        method_map, options_map = parse_mapping_cfg(f)  # type: ignore[no-untyped-call]
    for filename, _line, message, _comments, _ctx in extract_from_dir(
        ROOT, method_map=method_map, options_map=options_map, keywords=KEYWORDS
    ):
        if not filename.startswith("portal"):
            continue
        yield filename, message if isinstance(message, str) else message[0]


def test_babel_finds_every_used_message_in_every_catalogue() -> None:
    found = list(extracted())
    assert len(found) > 300, len(found)  # the extraction sees the templates and the code
    for lang in LANGS:
        known = set(messages(load(lang)))
        missing = sorted({f"{f}: {key}" for f, key in found if key not in known})
        assert not missing, f"{lang}: " + ", ".join(missing)


def test_no_inline_text_pairs_are_left() -> None:
    """Texts live in the catalogues only: tools/i18n_convert.py has nothing left to convert."""
    done = subprocess.run(
        [sys.executable, "tools/i18n_convert.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


# ---- every page in both languages ---------------------------------------------------------------------
# Indonesian words no English page may show (the reports' own texts below avoid them), and English ones no
# Indonesian page may show.
INDONESIAN = ("yang", "tidak", "belum", "sudah", "dengan", "untuk", "laporan", "halaman", "kembali", "jumlah",
              "tenggat", "terlambat", "simpan", "kirim", "pilih", "petugas", "perintah", "layar")  # fmt: skip
ENGLISH = ("the", "and", "your", "with", "not", "yet", "report", "reports", "page", "back", "send")


def distinctive(own: dict[str, tuple[str, ...]], other: dict[str, tuple[str, ...]]) -> set[str]:
    """The other language's texts (their literal parts of 12 characters or more) found in no text of ours."""
    ours = "\n".join(t for forms in own.values() for t in forms)
    out: set[str] = set()
    for key, forms in other.items():
        if key == "lang_name":  # the language link names each language in itself (<a lang="..">)
            continue
        for form in forms:
            for part in FIELD.split(form)[::2]:
                part = part.strip(" .:;,()")
                if len(part) >= 12 and part not in ours:
                    out.add(part)
    return out


def visible(html: str) -> list[str]:
    nodes = text_nodes(html)
    nodes += re.findall(r'(?:aria-label|alt|title|placeholder)="([^"]+)"', html)
    return nodes


def crawl_paths(app: FastAPI, ids: dict[str, str]) -> list[str]:
    paths = []
    for path, methods, _route in api_routes(app):
        # the event streams are endless (the wall's views they send are the ones its page shows)
        if (
            "GET" not in methods
            or path.startswith(("/open311", "/foto", "/static"))
            or path.endswith((".csv", ".json", ".webmanifest", ".js", ".xml", "/events", "/stream"))
        ):
            continue
        filled = re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: ids.get(m[1], "\0"), path)
        if "\0" not in filled:
            paths.append(filled)
    return sorted(set(paths))


@pytest.fixture
def visitors(app: FastAPI, client: TestClient, clock: FakeClock) -> Iterator[dict[str, TestClient]]:
    out = {"anonymous": TestClient(app), "citizen": client}
    try:
        for role, agency in (("admin", None), ("agency", "dinkes"), ("operator", None), ("viewer", None)):
            c = TestClient(app)
            login(c, add_user(app, role, agency))
            out[role] = c
        yield out
    finally:
        for name, c in out.items():
            if name != "citizen":
                c.close()


def test_every_page_in_both_languages_for_every_visitor(
    app: FastAPI, client: TestClient, visitors: dict[str, TestClient]
) -> None:
    code = submit(client, category="kesehatan", privacy="public")
    rid = report_id(app, code)
    runtime = runtime_of(app)
    ids = {"code": code, "report_id": str(rid), "proposal_id": "1", "user_id": "1"}
    paths = crawl_paths(app, ids)
    assert {"/", "/staf", "/konsol", "/dinding", "/dinding/admin", "/staf/evaluasi"} <= set(paths), paths
    texts: dict[str, dict[str, tuple[str, ...]]] = {lang: messages(load(lang)) for lang in LANGS}
    keys = sorted((k for k in texts["id"] if "_" in k), key=len, reverse=True)
    raw_key = re.compile(r"(?<![\w/.-])(" + "|".join(map(re.escape, keys)) + r")(?![\w/.-])")
    # proper names, in Indonesian only: agencies, kelurahan, the site's devices (devices/sites/*.yaml)
    names = {
        *(a.name for a in runtime.reference.agencies.values()),
        *runtime.reference.all_kelurahan().values(),
    }
    names |= {name for _device, name in runtime.room.plan.devices}
    problems: list[str] = []
    pages = 0
    for lang in LANGS:
        other = "en" if lang == "id" else "id"
        foreign = distinctive(texts[lang], texts[other])
        words = re.compile(r"\b(" + "|".join(INDONESIAN if lang == "en" else ENGLISH) + r")\b", re.I)
        for who, c in visitors.items():
            for path in paths:
                r = c.get(path + ("&" if "?" in path else "?") + f"lang={lang}", follow_redirects=False)
                assert r.status_code < 500, (who, path, r.status_code)
                if not r.headers.get("content-type", "").startswith("text/html"):
                    continue
                pages += 1
                for node in visible(r.text):
                    where = f"{lang} {who} {path}: {node[:80]!r}"
                    if raw_key.search(node):
                        problems.append(f"raw key {raw_key.search(node)[0]!r} in {where}")  # type: ignore[index]
                    if any(n in node for n in names):
                        continue
                    hits = [f for f in foreign if f in node]
                    if hits:
                        problems.append(f"{other} text {hits[0]!r} in {where}")
                    if words.search(node):
                        problems.append(f"{other} word {words.search(node)[0]!r} in {where}")  # type: ignore[index]
    assert pages > 40, pages
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(sorted(set(problems))[:150])


def test_staff_pages_follow_the_staff_members_own_language_unless_a_page_chooses(app: FastAPI) -> None:
    """A staff member whose contact language is English (``bcc admin set-contact --lang en``) gets English
    staff pages; ``?lang=id`` (and the cookie it sets) still wins, as on public pages."""
    who = add_user(app, "agency", "dinkes")
    runtime = runtime_of(app)
    with runtime.sessions() as db:
        user = db.scalar(select(User).where(User.username == who.username))
        assert user is not None
        users.set_contact(db, user, "", "en")
    queue = {lang: translate("queue_report_queue", lang) for lang in LANGS}
    with TestClient(app) as c:
        login(c, who)
        page = c.get("/staf")
        assert page.status_code == 200 and queue["en"] in page.text and queue["id"] not in page.text
        assert '<html lang="en">' in page.text
        page = c.get("/staf?lang=id")
        assert queue["id"] in page.text and queue["en"] not in page.text
        page = c.get("/staf")  # the cookie set by ?lang=id
        assert queue["id"] in page.text


# ---- the conversion a merge re-runs (tools/i18n_convert.py) ----------------------------------------------
def convert(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "tools/i18n_convert.py"), "--root", str(root), *args],
        capture_output=True,
        text=True,
    )


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of the portal's templates, modules and catalogues to convert."""
    shutil.copytree(
        ROOT / "portal", tmp_path / "portal", ignore=shutil.ignore_patterns("__pycache__", "*.mo")
    )
    return tmp_path


def test_conversion_moves_a_branchs_pairs_into_the_catalogues(checkout: Path) -> None:
    """What another branch adds the old way (a MESSAGES entry, an inline pair in a template or in Python)
    ends in both catalogues, the code calling t()/translate(); a second run finds nothing to do."""
    module = checkout / "portal/i18n.py"
    module.write_text(
        module.read_text(encoding="utf-8")
        + "\n\nMESSAGES: dict[str, tuple[str, str]] = {\n"
        + '    "sms_sent": ("SMS terkirim", "Text message sent"),\n'
        + '    "nav_report": ("Buat laporan", "Make a report"),  # already there, same texts\n}\n',
        encoding="utf-8",
    )
    page = checkout / "portal/templates/home.html"
    page.write_text(
        page.read_text(encoding="utf-8") + '<p>{{ "Kanal SMS" if lang == "id" else "SMS channel" }}</p>\n',
        encoding="utf-8",
    )
    code = checkout / "portal/web/labels.py"
    code.write_text(
        code.read_text(encoding="utf-8")
        + "\n\ndef sms_label(lang: str) -> str:\n"
        + '    return "Pesan singkat" if lang == "id" else "Short message"\n',
        encoding="utf-8",
    )
    assert convert(checkout, "--check").returncode == 1
    done = convert(checkout)
    assert done.returncode == 0, done.stderr
    assert "\nMESSAGES" not in module.read_text(encoding="utf-8")
    assert '{{ t("home_sms_channel") }}' in page.read_text(encoding="utf-8")
    assert 'return translate("labels_short_message", lang)' in code.read_text(encoding="utf-8")
    catalogs = {}
    for lang in LANGS:
        with (checkout / f"portal/locale/{lang}/LC_MESSAGES/messages.po").open("rb") as f:
            catalogs[lang] = messages(read_po(f))
    assert catalogs["id"]["sms_sent"] == ("SMS terkirim",) and catalogs["en"]["sms_sent"] == (
        "Text message sent",
    )
    assert catalogs["id"]["home_sms_channel"] == ("Kanal SMS",) and catalogs["en"]["home_sms_channel"] == (
        "SMS channel",
    )
    assert catalogs["en"]["labels_short_message"] == ("Short message",)
    assert (
        set(catalogs["id"])
        == set(catalogs["en"])
        == set(messages(load("en")))
        | {
            "sms_sent",
            "home_sms_channel",
            "labels_short_message",
        }
    )
    assert convert(checkout, "--check").returncode == 0


def test_conversion_refuses_a_key_with_other_texts_and_writes_nothing(checkout: Path) -> None:
    module = checkout / "portal/i18n.py"
    before = {p: p.read_bytes() for p in (checkout / "portal/locale").rglob("*.po")}
    module.write_text(
        module.read_text(encoding="utf-8")
        + '\n\nMESSAGES = {"nav_report": ("Laporkan", "Report it"), "sms_new": ("Baru", "New")}\n',
        encoding="utf-8",
    )
    done = convert(checkout)
    assert done.returncode == 2 and "nav_report" in done.stderr, done.stderr
    assert {p: p.read_bytes() for p in before} == before
    assert "\nMESSAGES" in module.read_text(encoding="utf-8")
