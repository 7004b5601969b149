"""Move hand-kept (Indonesian, English) text pairs into the gettext catalogues (docs/portal.md, "Languages").

Run from the repository's root, as many times as needed (it only does what is left to do):

    .venv/bin/python tools/i18n_convert.py [--check]

It converts, mechanically:

1. every entry of a ``MESSAGES = {key: (indonesian, english), ...}`` dict in ``portal/i18n.py`` (the
   dictionary the portal kept before the catalogues; a branch may still add to it): each becomes the
   message ``key`` of ``portal/locale/id/.../messages.po`` and ``portal/locale/en/.../messages.po``, and
   the dict is removed from the module;
2. every inline pair ``"indonesian" if lang == "id" else "english"`` (or ``if lang == "en"`` the other
   way round) in the templates and the portal's Python modules: the pair becomes a new message, named
   after the file and the English words (``queue_report_queue``), or the existing message with the same
   two texts; the expression becomes ``t("key")`` in a template and ``translate("key", lang)`` in Python.

A key already in a catalogue with other texts is a conflict: the script stops and says which, and
writes nothing. ``--check`` writes nothing and fails if anything is left to convert (CI-friendly).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent  # --root: another checkout (the tests use a copy)
PORTAL = ROOT / "portal"
LOCALE = PORTAL / "locale"
# The two languages the pairs hold, in the pairs' order.
PAIR_LANGS = ("id", "en")
PLURAL_FORMS = {"id": "nplurals=1; plural=0;", "en": "nplurals=2; plural=(n != 1);"}

INLINE = re.compile(
    r"""(?P<qa>["'])(?P<a>(?:(?!(?P=qa))[^\\\n])*)(?P=qa)\s+if\s+lang\s*==\s*(?P<qc>["'])(?P<c>id|en)(?P=qc)"""
    r"""\s+else\s+(?P<qb>["'])(?P<b>(?:(?!(?P=qb))[^\\\n])*)(?P=qb)"""
)


JINJA = jinja2.Environment()


class Conflict(Exception):
    pass


def set_root(root: Path) -> None:
    global ROOT, PORTAL, LOCALE
    ROOT, PORTAL, LOCALE = root, root / "portal", root / "portal" / "locale"


def po_path(lang: str) -> Path:
    return LOCALE / lang / "LC_MESSAGES" / "messages.po"


def load(lang: str) -> Catalog:
    path = po_path(lang)
    if path.exists():
        with path.open("rb") as f:
            return read_po(f, locale=lang)
    catalog = Catalog(locale=lang, project="BCC portal", copyright_holder="Kota Binjai", fuzzy=False)
    return catalog


def save(lang: str, catalog: Catalog) -> None:
    path = po_path(lang)
    path.parent.mkdir(parents=True, exist_ok=True)
    catalog.fuzzy = False
    with path.open("wb") as f:
        write_po(f, catalog, width=110, omit_header=False, sort_output=False)
    # babel writes its own Plural-Forms from the locale data; keep ours (docs/portal.md)
    text = path.read_text(encoding="utf-8")
    text = re.sub(r'"Plural-Forms: [^"\\]*\\n"', f'"Plural-Forms: {PLURAL_FORMS[lang]}\\\\n"', text)
    path.write_text(text, encoding="utf-8")


@dataclass
class Work:
    catalogs: dict[str, Catalog]
    added: list[str] = field(default_factory=list)
    rewritten: dict[Path, str] = field(default_factory=dict)

    def pair_of(self, key: str) -> tuple[str, str] | None:
        found = [self.catalogs[lang].get(key) for lang in PAIR_LANGS]
        if found[0] is None or found[1] is None:
            return None
        return str(found[0].string), str(found[1].string)

    def add(self, key: str, pair: tuple[str, str], where: str) -> None:
        have = self.pair_of(key)
        if have is not None:
            if have != pair:
                raise Conflict(f"{where}: {key} is already in the catalogues as {have!r}, not {pair!r}")
            return
        for lang, text in zip(PAIR_LANGS, pair, strict=True):
            self.catalogs[lang].add(key, text, auto_comments=[where] if where else ())
        self.added.append(key)

    def key_for(self, pair: tuple[str, str], prefix: str) -> str:
        """The message with these two texts, else a new key from ``prefix`` and the English words."""
        for message in self.catalogs["en"]:
            if message.id and isinstance(message.id, str) and self.pair_of(message.id) == pair:
                return message.id
        words = re.findall(r"[a-z0-9]+", pair[1].lower())[:4] or ["text"]
        base = f"{prefix}_{'_'.join(words)}"
        key, n = base, 2
        while self.pair_of(key) not in (None, pair):
            key, n = f"{base}_{n}", n + 1
        return key


def messages_dict(module: Path) -> tuple[ast.Assign | ast.AnnAssign, dict[str, tuple[str, str]]] | None:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        value = getattr(node, "value", None)
        if isinstance(target, ast.Name) and target.id == "MESSAGES" and isinstance(value, ast.Dict):
            pairs = ast.literal_eval(value)
            assert isinstance(node, ast.Assign | ast.AnnAssign)
            return node, {str(k): (str(v[0]), str(v[1])) for k, v in pairs.items()}
    return None


def convert_dict(work: Work, module: Path) -> None:
    found = messages_dict(module)
    if found is None:
        return
    node, pairs = found
    rel = module.relative_to(ROOT).as_posix()
    for key, pair in pairs.items():
        work.add(key, pair, "")
    lines = module.read_text(encoding="utf-8").splitlines(keepends=True)
    assert node.end_lineno is not None
    start = node.lineno - 1
    while start > 0 and lines[start - 1].lstrip().startswith("#"):  # its leading comment goes with it
        start -= 1
    del lines[start : node.end_lineno]
    text = "".join(lines)
    work.rewritten[module] = re.sub(r"\n{4,}", "\n\n\n", text)
    print(f"{rel}: {len(pairs)} MESSAGES entries moved to the catalogues")


def source_files() -> Iterator[Path]:
    yield from sorted((PORTAL / "templates").rglob("*.html"))
    yield from sorted(p for p in PORTAL.rglob("*.py") if "migrations" not in p.parts)


def prefix_of(path: Path) -> str:
    """The new keys' prefix: the file's name (``queue``), its folder's for an ``index`` (``wall``)."""
    stem = path.stem.lstrip("_")
    if stem in ("index", "__init__"):
        stem = path.parent.name
    return "email" if stem == "notify" else stem


def convert_inline(work: Work, path: Path) -> None:
    text = work.rewritten.get(path) or path.read_text(encoding="utf-8")
    template = path.suffix == ".html"
    count = 0

    def replace(m: re.Match[str]) -> str:
        nonlocal count
        a, b = m["a"], m["b"]
        if {a, b} <= set(PAIR_LANGS) or not (a or b):  # a language code chosen, not a text
            return m[0]
        pair = (a, b) if m["c"] == "id" else (b, a)
        key = work.key_for(pair, prefix_of(path))
        work.add(key, pair, "")
        count += 1
        q = m["qa"]
        return f"t({q}{key}{q})" if template else f'translate("{key}", lang)'

    new = INLINE.sub(replace, text)
    if count:
        try:  # a pair the pattern misread (a quote inside a text) must not leave broken code behind
            _ = JINJA.parse(new) if template else ast.parse(new)
        except (SyntaxError, jinja2.TemplateSyntaxError) as err:
            raise Conflict(
                f"{path.relative_to(ROOT)}: converting its pairs would break it ({err}); write "
                "that pair as a MESSAGES entry or in the .po files instead"
            ) from err
        if not template and "from portal.i18n import" not in new:
            new = re.sub(
                r"^(from portal\.)", "from portal.i18n import translate\n\\1", new, count=1, flags=re.M
            )
        work.rewritten[path] = new
        print(f"{path.relative_to(ROOT)}: {count} inline pairs converted")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; fail if anything is left")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout (default: this one)")
    parser.add_argument(
        "--pairs",
        action="append",
        default=[],
        help="a module (relative to the root) with a MESSAGES dict of pairs; default portal/i18n.py",
    )
    args = parser.parse_args(argv)
    set_root(args.root.resolve())
    work = Work({lang: load(lang) for lang in PAIR_LANGS})
    try:
        for module in args.pairs or ["portal/i18n.py"]:
            convert_dict(work, ROOT / module)
        for path in source_files():
            convert_inline(work, path)
    except Conflict as err:
        print(f"conflict, nothing written: {err}", file=sys.stderr)
        return 2
    if args.check:
        if work.added or work.rewritten:
            print("texts left to convert: run tools/i18n_convert.py", file=sys.stderr)
            return 1
        return 0
    for lang, catalog in work.catalogs.items():
        save(lang, catalog)
    for path, text in work.rewritten.items():
        path.write_text(text, encoding="utf-8")
    print(f"{len(work.added)} messages added; {len(work.rewritten)} files rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
