"""The time side of a lease, shared by every service that runs with a standby.

Whoever grants the lease (the alarms' database row, the gateway's retained message on the broker) only
answers "held" or "not held" for one attempt; this class turns those answers into "active until", "try
again at" and the changes of role, so the alarm evaluator and the gateway decide them the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["LeaseChange", "LeaseTerm"]


class LeaseChange(Enum):
    GAINED = "gained"
    LOST = "lost"


@dataclass
class LeaseTerm:
    """Active while ``now < held_until``; a holder renews every ``lease_s / 3``.

    ``held_until`` counts from when the successful attempt was *made* (``since``), not from when its
    answer arrived, so a slow answer can only shorten the term: a holder stops acting before anyone else
    may take over (they wait ``lease_s`` from the last renewal they saw).
    """

    lease_s: float
    held_until: float = 0.0
    renew_at: float = 0.0

    def active(self, now: float) -> bool:
        return now < self.held_until

    def due(self, now: float) -> bool:
        """Time for the next attempt (renew when holding, try to take when not)."""
        return now >= self.renew_at

    def record(self, held: bool, now: float, since: float | None = None) -> LeaseChange | None:
        """The answer to one attempt made at ``since`` (default ``now``); returns the change of role."""
        was_active = self.active(now)
        self.renew_at = now + self.lease_s / 3
        if held:
            self.held_until = (now if since is None else since) + self.lease_s
        else:
            self.held_until = 0.0
        if self.active(now) and not was_active:
            return LeaseChange.GAINED
        if was_active and not self.active(now):
            return LeaseChange.LOST
        return None

    def release(self) -> None:
        """Give the lease up (a clean stop): inactive at once."""
        self.held_until = 0.0
