"""A per-IP sliding-window limit on submissions, in memory (one process per portal; see docs/portal.md)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable


class RateLimiter:
    """At most ``limit`` hits per ``window_s`` for each key; thread-safe (sync routes run in threads)."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> bool:
        """Record one hit; False when the key is over its limit (the hit is then not counted)."""
        now = self.clock()
        with self._lock:
            if len(self._hits) > 100_000:  # bound memory under a spray of addresses
                self._hits = {k: v for k, v in self._hits.items() if v and v[-1] > now - self.window_s}
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window_s:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            return True
