"""Text as people type it: without the control characters nobody types and XML 1.0 cannot carry."""

from __future__ import annotations

import re

# C0 controls other than tab, line feed and carriage return, lone surrogates (a JSON "\ud800" decodes to
# one) and the two non-characters U+FFFE/U+FFFF: none may appear in an XML 1.0 document (its "Char"
# production), so one of them in a report's text would make Open311's XML unreadable for every client.
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean_text(value: str) -> str:
    """``value`` without the characters above (dropped: pasted text carries them by accident)."""
    # the common cases first: a one-line text (isprintable), then a search, three times faster than sub
    if value.isprintable() or _NOT_TEXT.search(value) is None:
        return value
    return _NOT_TEXT.sub("", value)
