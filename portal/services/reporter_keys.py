"""The reporter's secret key: what proves "I submitted this report", apart from its public tracking code.

The tracking code is public (the list, the map, Open311) and short enough to read over the phone; the
key is 32 random URL-safe characters (192 bits) that only the submitter receives. The database keeps
only its SHA-256 (``reports.secret_hash``): a plain hash is enough for a random 192-bit value (nothing
to guess, so no slow password hash), and it costs a submission microseconds. Reports stored before
keys existed have no hash (``None``): see :func:`legacy`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_BYTES = 24  # 192 bits, 32 characters of URL-safe base64
_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def new_key() -> tuple[str, str]:
    """A fresh key and the hash to store."""
    key = secrets.token_urlsafe(KEY_BYTES)
    return key, key_hash(key)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def well_formed(key: str) -> bool:
    """Could ``key`` be a key at all (length and alphabet)? Checked before hashing what a client sent."""
    return len(key) == 32 and _KEY_CHARS.issuperset(key)


def matches(key: str | None, stored_hash: str | None) -> bool:
    """Does ``key`` open the report whose stored hash is ``stored_hash``? Compared in constant time."""
    if not key or stored_hash is None or not well_formed(key):
        return False
    return hmac.compare_digest(key_hash(key), stored_hash)


def legacy(stored_hash: str | None) -> bool:
    """A report stored before reporter keys existed (migration 0007): it has no key until its reporter's
    browser claims one (portal.web.reporter)."""
    return stored_hash is None
