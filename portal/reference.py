"""Reference data shipped with the portal: categories with their agencies, and Binjai's kecamatan/kelurahan.

Loaded once from ``portal/data/*.yaml`` and validated: every category names a known agency and every
kelurahan key is unique across the city (the kelurahan alone identifies the kecamatan).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, model_validator

from bcc_contract.reports import CATEGORIES_FILE as CONTRACT_CATEGORIES_FILE

DATA_DIR = Path(__file__).resolve().parent / "data"
# Categories belong to the MQTT contract (events carry their keys): one file, read by every part.
CATEGORIES_FILE = CONTRACT_CATEGORIES_FILE
Lang = Literal["id", "en"]
LANGS: tuple[Lang, ...] = ("id", "en")
DEFAULT_LANG: Lang = LANGS[0]


def lang_or_default(lang: object) -> Lang:
    """``lang`` when it is one of the portal's languages, else the default (Indonesian): the one rule for
    a language that comes from elsewhere (a stored report or account, a query, a cookie)."""
    return next((known for known in LANGS if known == lang), DEFAULT_LANG)


class Text(BaseModel):
    """A text in both portal languages."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    en: str

    def get(self, lang: str) -> str:
        return self.en if lang_or_default(lang) == "en" else self.id


class Agency(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    key: str
    name: str
    short: str | None = None  # the abbreviation officials use (Dinkes, Bappeda), for charts


class Category(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    key: str
    agency: str
    name: Text
    description: Text
    group: Text


class Kecamatan(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    key: str
    name: str
    kelurahan: dict[str, str]


class Reference(BaseModel):
    """All reference data; lookups by key."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    agencies: dict[str, Agency]
    categories: dict[str, Category]
    kecamatan: dict[str, Kecamatan]

    @model_validator(mode="after")
    def _check(self) -> Reference:
        problems = [
            f"category {c.key}: unknown agency {c.agency!r}"
            for c in self.categories.values()
            if c.agency not in self.agencies
        ]
        seen: dict[str, str] = {}
        for kec in self.kecamatan.values():
            for kel in kec.kelurahan:
                if kel in seen:
                    problems.append(f"kelurahan {kel} is in both {seen[kel]} and {kec.key}")
                seen[kel] = kec.key
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def kecamatan_of(self, kelurahan: str) -> Kecamatan | None:
        for kec in self.kecamatan.values():
            if kelurahan in kec.kelurahan:
                return kec
        return None

    def kelurahan_name(self, kelurahan: str) -> str:
        kec = self.kecamatan_of(kelurahan)
        return kec.kelurahan[kelurahan] if kec else kelurahan

    def all_kelurahan(self) -> dict[str, str]:
        """kelurahan key -> display name, in file order."""
        return {k: v for kec in self.kecamatan.values() for k, v in kec.kelurahan.items()}


@cache
def load_reference(data_dir: Path = DATA_DIR, categories_file: Path = CATEGORIES_FILE) -> Reference:
    """Read and validate ``areas.yaml`` in ``data_dir`` and the contract's ``categories.yaml`` (cached)."""
    cats = yaml.safe_load(categories_file.read_text(encoding="utf-8"))
    areas = yaml.safe_load((data_dir / "areas.yaml").read_text(encoding="utf-8"))
    return Reference(
        agencies={k: Agency(key=k, **v) for k, v in cats["agencies"].items()},
        categories={k: Category(key=k, **v) for k, v in cats["categories"].items()},
        kecamatan={k: Kecamatan(key=k, **v) for k, v in areas.items()},
    )
