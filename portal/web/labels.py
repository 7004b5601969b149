"""Human names for the keys that are stored and published (categories, agencies, roles, statuses,
resolutions, privacy): staff pages show these, never a raw key (tests/portal/web/test_names.py)."""

from __future__ import annotations

from portal.i18n import translate
from portal.reference import Lang, Reference


class Names:
    """``names.category("kesehatan")`` -> "Kesehatan"; an unknown key comes back as it is."""

    def __init__(self, ref: Reference, lang: Lang) -> None:
        self.ref, self.lang = ref, lang

    def category(self, key: str) -> str:
        found = self.ref.categories.get(key)
        return found.name.get(self.lang) if found else key

    def agency(self, key: str | None) -> str:
        found = self.ref.agencies.get(key or "")
        return found.name if found else (key or "–")

    def agency_short(self, key: str | None) -> str:
        """The abbreviation officials use (Dinkes, Bappeda): for chart labels."""
        found = self.ref.agencies.get(key or "")
        return (found.short or found.name) if found else (key or "–")

    def role(self, key: str) -> str:
        return translate(f"role_{key}", self.lang)

    def status(self, key: str) -> str:
        return translate(f"status_{key}", self.lang)

    def resolution(self, key: str) -> str:
        return translate(f"resolution_{key}", self.lang)

    def privacy(self, key: str) -> str:
        return translate(f"privacy_name_{key}", self.lang)
