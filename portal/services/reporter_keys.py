"""The reporter's secret key: what proves "I submitted this report", apart from its public tracking code.

The tracking code is public (the list, the map, Open311) and short enough to read over the phone; the
key is 32 random URL-safe characters (192 bits) that only the submitter receives. The database keeps
only its SHA-256 (``reports.secret_hash``): a plain hash is enough for a random 192-bit value (nothing
to guess, so no slow password hash), and it costs a submission microseconds. Reports stored before
keys existed have no hash (``None``): see :func:`legacy`.
"""

from __future__ import annotations

import base64
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


# Offline drafts (docs/portal.md, "Offline drafts"). The web app gives every draft a random 128-bit
# idempotency key (32 hex digits, crypto.getRandomValues) and sends it with the draft, as often as a
# flaky connection needs. The database keeps only its SHA-256 (``reports.draft_hash``, unique), and the
# report's secret key is derived from it: a replay with the same draft key finds the first report and
# gets the same code and the same key back, which only the holder of the draft key can obtain (the key
# is in no response to anyone else). Both derivations are domain-separated, so neither stored hash
# equals the other's input or output.
DRAFT_KEY_CHARS = frozenset("0123456789abcdef")


def well_formed_draft_key(draft_key: str) -> bool:
    return len(draft_key) == 32 and DRAFT_KEY_CHARS.issuperset(draft_key)


def draft_hash(draft_key: str) -> str:
    return hashlib.sha256(b"bcc-draft:" + draft_key.encode()).hexdigest()


def key_from_draft(draft_key: str) -> tuple[str, str]:
    """The reporter's key of the report made from the draft ``draft_key`` (always the same), and its hash."""
    digest = hmac.new(draft_key.encode(), b"bcc-reporter-key", hashlib.sha256).digest()[:KEY_BYTES]
    key = base64.urlsafe_b64encode(digest).decode()
    return key, key_hash(key)
