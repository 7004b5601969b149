"""Indonesian mobile numbers, the ones an SMS reaches: checked and written in E.164 (``+628...``)."""

from __future__ import annotations

import re

# An Indonesian mobile number: 08.. nationally, +628.. / 628.. internationally; after the 8, the
# operator's 2-3 digit prefix and the subscriber number: 9 to 12 digits in all after the country code.
_MOBILE = re.compile(r"^8[1-9][0-9]{7,10}$")
_SEPARATORS = re.compile(r"[\s().-]")


def mobile_id(text: str) -> str | None:
    """``text`` as an Indonesian mobile number in E.164 (``+628...``), or None if it is not one."""
    raw = _SEPARATORS.sub("", text.strip())
    for prefix in ("+62", "0062", "62", "0"):
        if raw.startswith(prefix):
            national = raw[len(prefix) :]
            return f"+62{national}" if _MOBILE.match(national) else None
    return None
