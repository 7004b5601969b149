"""What the public may see of a report: the one place that says it, as SQL conditions and as predicates.

Two levels, both refusing every report whose privacy is ``confidential``:

* **listed** (:func:`listed`, :func:`is_listed`): shown to anyone without its tracking code - the
  public list ``/daftar`` and its map, the similar-report suggestions of the report form, Open311's
  ``GET /requests`` without ``service_request_id``. Only reports an admin has verified and not rejected.
* **not confidential** (:func:`not_confidential`, :func:`is_not_confidential`): reports that may be
  shown or counted without being listed - Open311's ``GET /requests/{id}`` and
  ``GET /requests?service_request_id=`` by tracking code (a
  reporter follows a request before it is verified), the video wall's feed, map and counts (category,
  kelurahan, status and times only), and what operators and viewers see in the staff queue.

"Verified" means an admin verified it once (``verified_at`` is set), not "past ``submitted``": a report
closed straight from ``submitted`` (a duplicate, a rejection) was never checked by anyone and stays
unlisted.

The status page ``/laporan/{code}`` shows a report that is not confidential to anyone with its
tracking code; a confidential report exists there only for its reporter (the reporter's key,
portal.web.reporter) and for staff pages: to everyone else it is a 404, like an unknown code. The
report events on MQTT carry no tracking code for a confidential report (bcc_contract.reports).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, or_

from portal.models import Report

CONFIDENTIAL = "confidential"
REJECTED = "rejected"


def not_confidential() -> ColumnElement[bool]:
    """SQL condition: the report's privacy is not ``confidential``."""
    return Report.privacy != CONFIDENTIAL


def listed() -> ColumnElement[bool]:
    """SQL condition: the report is listed publicly (verified, not confidential, not rejected)."""
    return and_(
        not_confidential(),
        Report.verified_at.is_not(None),
        or_(Report.resolution.is_(None), Report.resolution != REJECTED),
    )


def is_not_confidential(report: Report) -> bool:
    """:func:`not_confidential` for a loaded report."""
    return report.privacy != CONFIDENTIAL


def is_listed(report: Report) -> bool:
    """:func:`listed` for a loaded report."""
    return is_not_confidential(report) and report.verified_at is not None and report.resolution != REJECTED
