"""The shipped reference data: Binjai's 5 kecamatan and 37 kelurahan, five categories with agencies."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bcc_contract.reports import CATEGORIES_FILE
from portal.reference import DEFAULT_LANG, LANGS, lang_or_default, load_reference
from tests.support.paths import ROOT


def test_binjai_has_5_kecamatan_and_37_kelurahan() -> None:
    ref = load_reference()
    assert list(ref.kecamatan) == [
        "binjai_kota",
        "binjai_utara",
        "binjai_selatan",
        "binjai_timur",
        "binjai_barat",
    ]
    assert len(ref.all_kelurahan()) == 37
    assert ref.kecamatan_of("tangsi").key == "binjai_kota"  # type: ignore[union-attr]
    assert ref.kecamatan_of("atlantis") is None


def test_every_category_has_an_agency() -> None:
    ref = load_reference()
    assert set(ref.categories) == {
        "kesehatan",
        "perencanaan_pembangunan",
        "perizinan",
        "anggaran",
        "pengaduan_umum",
    }
    assert all(c.agency in ref.agencies for c in ref.categories.values())


def test_unknown_agency_is_refused(tmp_path: Path) -> None:
    src = ROOT / "portal" / "data"
    (tmp_path / "areas.yaml").write_text((src / "areas.yaml").read_text())
    text = CATEGORIES_FILE.read_text().replace("agency: dinkes", "agency: nowhere")
    (tmp_path / "categories.yaml").write_text(text)
    with pytest.raises(ValidationError, match="unknown agency 'nowhere'"):
        load_reference(tmp_path, tmp_path / "categories.yaml")


@pytest.mark.parametrize(
    ("given", "lang"),
    [("id", "id"), ("en", "en"), ("fr", "id"), ("", "id"), (None, "id"), ("EN", "id"), ("en ", "id")],
)
def test_a_language_that_is_not_the_portals_falls_back_to_the_default(given: object, lang: str) -> None:
    assert lang_or_default(given) == lang == (given if given in LANGS else DEFAULT_LANG)
