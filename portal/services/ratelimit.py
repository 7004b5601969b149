"""Per-client sliding-window limits (submissions, login attempts) kept in the database.

Every counted request is a row of ``rate_hits``, so all workers and hosts of one portal share the
limit (docs/architecture.md: nothing may assume a single process). A request is allowed while fewer than
``limit`` hits of the same scope and key fall in the last ``window``. Refused requests add no row, so
a key never holds more than ``limit`` rows in a window and a check reads at most that many index
entries per key (one query for a whole batch of keys). Expired rows are deleted by whichever worker
checks first after ``cleanup_every``.

Two workers that check the same key at the same instant may both see ``limit - 1`` and both pass: an
abuse limit may overshoot by the number of workers, never undershoot.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Dialect, Table, delete

from portal.db import dbapi_cursor, placeholder, raw_execute, raw_insert
from portal.models import RateHit

HITS = cast(Table, RateHit.__table__)
_KEY = '"key"'  # keywords in some SQL dialects ("key", "at"): always quoted


class RateLimiter:
    def __init__(
        self, scope: str, limit: int, window: timedelta, cleanup_every: timedelta | None = None
    ) -> None:
        self.scope = scope
        self.limit = limit
        self.window = window
        self.cleanup_every = cleanup_every or timedelta(seconds=60)
        self._last_cleanup: datetime | None = None

    def used(self, conn: Connection, keys: Sequence[str], now: datetime) -> dict[str, int]:
        """Hits of each of ``keys`` in the window ending at ``now``."""
        with dbapi_cursor(conn) as cursor:
            return self._used(cursor, conn.dialect, keys, now)

    def _used(self, cursor: Any, dialect: Dialect, keys: Sequence[str], now: datetime) -> dict[str, int]:
        # plain DB-API SQL: it runs for every submission (portal.db.RawInsert says why)
        distinct = list(dict.fromkeys(key[:64] for key in keys))
        counts = {key: 0 for key in distinct}
        mark = placeholder(dialect)
        rows = raw_execute(
            dialect,
            cursor,
            f'SELECT {_KEY}, count(*) FROM rate_hits WHERE scope = {mark} AND "at" > {mark} '
            f"AND {_KEY} IN ({', '.join([mark] * len(distinct))}) GROUP BY {_KEY}",
            [self.scope, raw_insert(HITS, dialect).bind("at", now - self.window), *distinct],
        )
        for key, n in rows:
            counts[key] = n
        return counts

    def hit(self, conn: Connection, keys: Sequence[str], now: datetime) -> list[bool]:
        """Count one request for each of ``keys`` (repeats allowed) unless its key is over the limit;
        True where allowed. Runs in the caller's transaction: commit to make the hits count."""
        keys = [key[:64] for key in keys]
        cutoff = now - self.window
        with dbapi_cursor(conn) as cursor:
            used = self._used(cursor, conn.dialect, keys, now)
            allowed: list[bool] = []
            rows = []
            for key in keys:
                ok = used[key] < self.limit
                if ok:
                    used[key] += 1
                    rows.append({"scope": self.scope, "key": key, "at": now})
                allowed.append(ok)
            raw_insert(HITS, conn.dialect).execute(cursor, rows)
        if self._last_cleanup is None or now - self._last_cleanup >= self.cleanup_every:
            self._last_cleanup = now
            conn.execute(delete(HITS).where(HITS.c.scope == self.scope, HITS.c.at <= cutoff))
        return allowed
