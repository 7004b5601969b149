"""User-facing texts from gettext catalogues, one per language: ``portal/locale/<lang>/LC_MESSAGES/
messages.po`` (docs/portal.md, "Languages"). Templates call ``t(key)`` / ``tn(key, plural_key, n)``, Python
calls ``translate(key, lang)``. Message ids are keys, not source texts: Indonesian and English are both
translations of them (neither language is the source), and validation errors, statuses and stages travel
through the services as keys.

The compiled ``.mo`` files are built by ``make locale`` (part of ``make venv``) and shipped in the wheel; a
source checkout whose ``.mo`` is missing or older than its ``.po`` compiles the ``.po`` in memory instead
(never writing into the package), so a page never shows stale texts. An installed package uses its
``.mo`` whatever the files' times (pip does not keep them, and writes the ``.po`` after the ``.mo``); it
compiles only a ``.mo`` that is missing."""

from __future__ import annotations

import functools
import gettext
import io
from pathlib import Path

from portal.reference import DEFAULT_LANG, Lang

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"
# A source checkout (the package beside the project's pyproject.toml), where a translator edits the .po;
# an installed package sits in site-packages, where the .po and .mo times say nothing.
SOURCE_CHECKOUT = (LOCALE_DIR.parent.parent / "pyproject.toml").is_file()


def catalogue_paths(lang: str) -> tuple[Path, Path]:
    """The ``.po`` a translator edits and the ``.mo`` compiled from it."""
    po = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    return po, po.with_suffix(".mo")


def compile_po(po: Path) -> bytes:
    """The ``.mo`` bytes of ``po`` (fuzzy entries left out, as ``pybabel compile`` does)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as f:
        catalog = read_po(f)
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


@functools.cache
def catalogue(lang: str) -> gettext.GNUTranslations:
    """The translations of ``lang``; a message missing there falls back to the default language's."""
    po, mo = catalogue_paths(lang)
    fresh = mo.exists() and (
        not SOURCE_CHECKOUT or not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime
    )
    found = gettext.GNUTranslations(io.BytesIO(mo.read_bytes() if fresh else compile_po(po)))
    if lang != DEFAULT_LANG:
        found.add_fallback(catalogue(DEFAULT_LANG))
    return found


def translate(key: str, lang: Lang, **fields: object) -> str:
    """The text of ``key`` in ``lang``, its ``{fields}`` filled in when given; an unknown key comes back as
    it is (visible, and the tests look for raw keys)."""
    text = catalogue(lang).gettext(key)
    return text.format(**fields) if fields else text


def translate_n(key: str, plural_key: str, n: int, lang: Lang, **fields: object) -> str:
    """The text of ``key`` for the count ``n`` (the language's plural rule picks the form), ``{n}`` and
    ``{fields}`` filled in."""
    return catalogue(lang).ngettext(key, plural_key, n).format(n=n, **fields)
