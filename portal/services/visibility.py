"""What the public may see of a report: the one place that says it, as SQL conditions and as predicates.

Two levels, both refusing every report whose privacy is ``confidential``:

* **listed** (:func:`listed`, :func:`is_listed`): shown to anyone without its tracking code - the
  public list ``/daftar`` and its map, the similar-report suggestions of the report form, Open311's
  ``GET /requests``. Only reports an admin has verified (status past ``submitted``) and not rejected.
* **not confidential** (:func:`not_confidential`, :func:`is_not_confidential`): reports that may be
  shown or counted without being listed - Open311's ``GET /requests/{id}`` by tracking code (a
  reporter follows a request before it is verified), the video wall's feed, map and counts (category,
  kelurahan, status and times only), and what operators and viewers see in the staff queue.

The status page ``/laporan/{code}`` is the reporter's own page: the unguessable tracking code is the
key to it, whatever the privacy (the reporter can also make the report stricter there).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, or_

from portal.models import Report

CONFIDENTIAL = "confidential"
UNVERIFIED = "submitted"  # the status before an admin has verified the report
REJECTED = "rejected"


def not_confidential() -> ColumnElement[bool]:
    """SQL condition: the report's privacy is not ``confidential``."""
    return Report.privacy != CONFIDENTIAL


def listed() -> ColumnElement[bool]:
    """SQL condition: the report is listed publicly (verified, not confidential, not rejected)."""
    return and_(
        not_confidential(),
        Report.status != UNVERIFIED,
        or_(Report.resolution.is_(None), Report.resolution != REJECTED),
    )


def is_not_confidential(report: Report) -> bool:
    """:func:`not_confidential` for a loaded report."""
    return report.privacy != CONFIDENTIAL


def is_listed(report: Report) -> bool:
    """:func:`listed` for a loaded report."""
    return is_not_confidential(report) and report.status != UNVERIFIED and report.resolution != REJECTED
