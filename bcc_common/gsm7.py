"""SMS texts in the GSM 7-bit default alphabet (3GPP TS 23.038, formerly GSM 03.38): one SMS carries
160 septets; a character of the basic table takes one, a character of the extension table (reached
through the escape code) takes two. A character outside both would force the whole message into
UCS-2 (70 characters), so :func:`to_gsm7` replaces it, deterministically: letters with accents lose
them when the bare letter is in the table (é is in it and stays), typographic quotes and dashes
become their plain forms, anything else becomes ``?``. :func:`fit` shortens a text to a budget of
septets without cutting a character of the extension table in half.
"""

from __future__ import annotations

import unicodedata

SMS_SEPTETS = 160

# the basic table (escape 0x1B excluded), in code order
BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
).replace("\x1b", "")
# the extension table's characters (each sent as escape + code: two septets)
EXTENSION = "\f^{}\\[~]|€"

_BASIC = frozenset(BASIC)
_EXTENSION = frozenset(EXTENSION)
# common characters outside the alphabet and their plain stand-ins
_PLAIN = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u2013": "-",
    "\u2014": "-",
    "\u2212": "-",
    "\u2026": "...",
    "\u00a0": " ",
    "\u2009": " ",
    "\u202f": " ",
    "\t": " ",
    "\u00b0": "",  # the degree sign: "27 C" reads as well as "27 °C"
    "\u00b7": "-",
    "\u2022": "-",
    "`": "'",
}


def septets(text: str) -> int:
    """Septets ``text`` takes in the GSM default alphabet (ValueError for a character outside it)."""
    total = 0
    for ch in text:
        if ch in _BASIC:
            total += 1
        elif ch in _EXTENSION:
            total += 2
        else:
            raise ValueError(f"not in the GSM 7-bit alphabet: {ch!r}")
    return total


def _replacement(ch: str) -> str:
    if ch in _BASIC or ch in _EXTENSION:
        return ch
    if ch in _PLAIN:
        return _PLAIN[ch]
    bare = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    if bare and all(c in _BASIC or c in _EXTENSION for c in bare):
        return bare
    return "?"


def to_gsm7(text: str) -> str:
    """``text`` with every character outside the GSM alphabet replaced (see the module's docstring)."""
    return "".join(_replacement(ch) for ch in text)


def fit(text: str, budget: int, ellipsis: str = "...") -> str:
    """``text`` (GSM characters only) shortened to at most ``budget`` septets: cut at the last whole
    character that leaves room for ``ellipsis``; unchanged when it fits."""
    if septets(text) <= budget:
        return text
    room = budget - septets(ellipsis)
    used, cut = 0, 0
    for i, ch in enumerate(text):
        cost = 2 if ch in _EXTENSION else 1
        if used + cost > room:
            break
        used, cut = used + cost, i + 1
    return text[:cut].rstrip() + ellipsis


def sms_text(
    template: str, values: dict[str, str], shrink: str | tuple[str, ...], budget: int = SMS_SEPTETS
) -> str:
    """``template`` filled with ``values`` (each made GSM-7), one SMS long: when it is too long the values
    named in ``shrink`` (the free text: a rule's message, a stage's name, an alarm's value), in that
    order, are shortened, each down to nothing before the next is touched, until it fits; the code and
    the link never are. ValueError when even with all of them empty it does not fit."""
    clean = {k: to_gsm7(v) for k, v in values.items()}
    for name in (shrink,) if isinstance(shrink, str) else shrink:
        over = septets(to_gsm7(template.format(**clean))) - budget
        if over <= 0:
            break
        keep = septets(clean[name]) - over
        clean[name] = fit(clean[name], keep) if keep >= 4 else ""
    text = to_gsm7(template.format(**clean))
    if septets(text) > budget:
        raise ValueError(f"the SMS does not fit in {budget} septets: {text!r}")
    return text
