"""Staff pages: the queue, one report with its actions (redaction too), the monthly evaluation, its CSV."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.responses import Response

from portal.errors import Forbidden, InvalidInput, NotFound, TransitionRefused
from portal.i18n import translate
from portal.models import AGENCY_ROLES, RESOLUTIONS, STATUSES, User
from portal.services import evaluation, personal_data, proposals, workflow
from portal.services.deadlines import WIB
from portal.web import charts
from portal.web.deps import (
    AdminUser,
    CsrfDep,
    EvaluationUser,
    LangDep,
    NowDep,
    RefDep,
    ResponderUser,
    SessionDep,
    SinkDep,
    StaffUser,
    lang_of,
    render,
)
from portal.web.labels import Names

router = APIRouter(prefix="/staf", default_response_class=HTMLResponse)
# Database ids are 32-bit on every backend: larger numbers are a 422, not an overflow deep in the driver.
ReportId = Annotated[int, Path(ge=1, le=2_147_483_647)]


@router.get("")
def queue_page(
    request: Request,
    lang: LangDep,
    db: SessionDep,
    now: NowDep,
    user: StaffUser,
    status: str = "open",
    category: str = "",
    agency: str = "",
    kelurahan: str = "",
    min_age_days: str = "",
    overdue: str = "",
    page: int = 1,
) -> Response:
    age = min(int(min_age_days), 36500) if min_age_days.isascii() and min_age_days.isdigit() else None
    flt = workflow.QueueFilter(status, category, agency, kelurahan, age, overdue == "1", page)
    result = workflow.queue(db, user, flt, now)
    rows = [(r, workflow.age_info(r, now)) for r in result.reports]
    # the next page keeps every filter (the age and overdue filters were once lost on page 2)
    next_query = urlencode(
        {
            "status": status,
            "category": category,
            "agency": agency,
            "kelurahan": kelurahan,
            "min_age_days": "" if age is None else age,
            "overdue": "1" if flt.overdue else "",
            "page": result.page + 1,
        }
    )
    context = {
        "result": result,
        "rows": rows,
        "filter": flt,
        "statuses": STATUSES,
        "now": now,
        "next_query": next_query,
    }
    return render(request, lang, "staff/queue.html", context)


def _report_page(
    request: Request,
    lang: LangDep,
    db: SessionDep,
    now: datetime,
    user: User,
    report_id: ReportId,
    error: str = "",
    status: int = 200,
) -> Response:
    try:
        report = workflow.get_for_staff(db, user, report_id)
    except NotFound as err:
        raise HTTPException(404, "No such report") from err
    show_contact = workflow.sees_contact(user, report) and personal_data.has_contact(report)
    if show_contact:  # the personal-data access log: who was shown the reporter's contact, when
        personal_data.log_contact_view(db, user, report, now)
    context = {
        "report": report,
        "age": workflow.age_info(report, now),
        "show_contact": show_contact,
        "originals": personal_data.redactions_of(db, user, report.id),
        "resolutions": RESOLUTIONS,
        # the development proposal carrying a needs-budget report
        "proposal": proposals.of_report(db, report.id) if report.resolution == "needs_budget" else None,
        "error": error,
        "user": user,
    }
    return render(request, lang, "staff/report.html", context, status)


@router.get("/laporan/{report_id}")
def report_page(
    request: Request, lang: LangDep, db: SessionDep, now: NowDep, user: StaffUser, report_id: ReportId
) -> Response:
    return _report_page(request, lang, db, now, user, report_id)


def _after(
    request: Request,
    lang: LangDep,
    db: SessionDep,
    now: datetime,
    user: User,
    report_id: ReportId,
    action: object,
) -> Response:
    try:
        if callable(action):
            action()
    except NotFound as err:
        raise HTTPException(404, "No such report") from err
    except Forbidden as err:
        raise HTTPException(403, "Your role may not do this") from err
    except InvalidInput as err:
        db.rollback()
        return _report_page(request, lang, db, now, user, report_id, next(iter(err.errors.values())), 400)
    except TransitionRefused as err:
        db.rollback()
        return _report_page(request, lang, db, now, user, report_id, str(err), 409)
    return RedirectResponse(f"/staf/laporan/{report_id}", status_code=303)


@router.post("/laporan/{report_id}/verifikasi", dependencies=[CsrfDep])
def verify(
    request: Request,
    lang: LangDep,
    db: SessionDep,
    sink: SinkDep,
    now: NowDep,
    user: AdminUser,
    report_id: ReportId,
) -> Response:
    return _after(
        request, lang, db, now, user, report_id, lambda: workflow.verify(db, user, report_id, sink, now)
    )


@router.post("/laporan/{report_id}/disposisi", dependencies=[CsrfDep])
def dispatch(
    request: Request,
    lang: LangDep,
    db: SessionDep,
    ref: RefDep,
    sink: SinkDep,
    now: NowDep,
    user: AdminUser,
    report_id: ReportId,
    agency: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> Response:
    return _after(
        request,
        lang,
        db,
        now,
        user,
        report_id,
        lambda: workflow.dispatch(db, ref, user, report_id, agency, note, sink, now),
    )


@router.post("/laporan/{report_id}/tanggapan", dependencies=[CsrfDep])
def respond(
    request: Request,
    lang: LangDep,
    db: SessionDep,
    ref: RefDep,
    sink: SinkDep,
    now: NowDep,
    user: ResponderUser,
    report_id: ReportId,
    body: Annotated[str, Form()] = "",
) -> Response:
    return _after(
        request,
        lang,
        db,
        now,
        user,
        report_id,
        lambda: workflow.respond(db, ref, user, report_id, body, sink, now),
    )


@router.post("/laporan/{report_id}/tutup", dependencies=[CsrfDep])
def close(
    request: Request,
    lang: LangDep,
    db: SessionDep,
    sink: SinkDep,
    now: NowDep,
    user: AdminUser,
    report_id: ReportId,
    ref: RefDep,
    resolution: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    duplicate_code: Annotated[str, Form()] = "",
    proposal: Annotated[str, Form()] = "",
    proposal_title: Annotated[str, Form()] = "",
) -> Response:
    return _after(
        request,
        lang,
        db,
        now,
        user,
        report_id,
        lambda: workflow.close(
            db,
            user,
            report_id,
            resolution,
            note,
            duplicate_code,
            sink,
            now,
            ref=ref,
            proposal=proposal,
            proposal_title=proposal_title,
        ),
    )


@router.post("/laporan/{report_id}/samarkan", dependencies=[CsrfDep])
def redact(
    request: Request,
    lang: LangDep,
    db: SessionDep,
    now: NowDep,
    user: ResponderUser,
    report_id: ReportId,
    field: Annotated[str, Form()] = "description",
    phrases: Annotated[str, Form()] = "",
) -> Response:
    """Replace personal data the citizen typed (one phrase per line) with a marker; admins keep the
    original (portal/services/personal_data.py)."""

    def action() -> None:
        report = workflow.get_for_staff(db, user, report_id)
        personal_data.redact(db, user, report, field, phrases[:4000], now)

    return _after(request, lang, db, now, user, report_id, action)


def _month(month: str, now: datetime) -> str | None:
    """The month asked for (``YYYY-MM``), the current one when none is, None when it is not a month."""
    if not month:
        return now.astimezone(WIB).strftime("%Y-%m")
    try:
        evaluation.month_bounds(month)
    except ValueError:
        return None
    return month


def _bad_month(request: Request) -> Response:
    """400 with the reason in the user's language, for the page and its CSV alike."""
    context = {"status": 400, "message_key": "err_month"}
    return render(request, lang_of(request), "error.html", context, 400)


@router.get("/evaluasi")
def evaluation_page(
    request: Request,
    lang: LangDep,
    db: SessionDep,
    ref: RefDep,
    now: NowDep,
    user: EvaluationUser,
    month: str = "",
) -> Response:
    chosen = _month(month, now)
    if chosen is None:
        return _bad_month(request)
    rows = evaluation.evaluate(db, ref, chosen)
    names = Names(ref, lang)
    rates = evaluation.agency_rates(rows)
    verify, respond = translate("eval_verified_on_time", lang), translate("eval_responded_on_time", lang)
    budget = evaluation.budget(db, ref, chosen)
    context = {
        "month": chosen,
        "rows": rows,
        "total": evaluation.totals(rows),
        "segments": evaluation.SEGMENTS,
        "rates": rates,
        "by_row": charts.rows_chart(
            rows, lambda r: f"{names.category(r.category)} · {names.agency_short(r.agency)}"
        ),
        "by_month": charts.trend_chart(evaluation.trend(db, chosen), lang),
        "on_time": charts.rates_chart(rates, names.agency_short, verify, respond),
        # what became of the month's needs-budget closures (development proposals)
        "budget": budget,
        "budget_total": evaluation.budget_totals(budget),
        "stages": proposals.ALL_STAGES,
    }
    return render(request, lang, "staff/evaluation.html", context)


@router.get("/evaluasi.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def evaluation_csv(
    request: Request, db: SessionDep, ref: RefDep, now: NowDep, user: EvaluationUser, month: str = ""
) -> Response:
    chosen = _month(month, now)
    if chosen is None:
        return _bad_month(request)
    body = evaluation.to_csv(evaluation.evaluate(db, ref, chosen))
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="evaluasi-{chosen}.csv"',
            "Cache-Control": "no-store",
        },
    )


def _budget_reader(user: User) -> None:
    """The budget views are for the evaluation's roles and for Bappeda (its officers and head)."""
    if user.role in AGENCY_ROLES and user.agency != proposals.PLANNING_AGENCY:
        raise HTTPException(403, "Your role may not do this")


@router.get("/evaluasi/anggaran.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def budget_csv(
    request: Request, db: SessionDep, ref: RefDep, now: NowDep, user: StaffUser, month: str = ""
) -> Response:
    """The evaluation's budget view as CSV: for the evaluation's roles and for Bappeda."""
    _budget_reader(user)
    chosen = _month(month, now)
    if chosen is None:
        return _bad_month(request)
    return Response(
        evaluation.budget_csv(evaluation.budget(db, ref, chosen)),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="usulan-anggaran-{chosen}.csv"',
            "Cache-Control": "no-store",
        },
    )


def _budget_year(year: str, now: datetime, known: list[int]) -> int | None:
    """The budget year asked for (4 ASCII digits); without one the newest year with proposals (else this
    year); None when it is not a year."""
    if not year:
        return known[0] if known else now.astimezone(WIB).year
    return int(year) if year.isascii() and year.isdigit() and len(year) == 4 else None


def _bad_year(request: Request) -> Response:
    context = {"status": 400, "message_key": "err_budget_year"}
    return render(request, lang_of(request), "error.html", context, 400)


@router.get("/evaluasi/tahunan")
def yearly_page(
    request: Request, lang: LangDep, db: SessionDep, now: NowDep, user: StaffUser, year: str = ""
) -> Response:
    """The proposals of one budget year per agency and per kecamatan (counts per stage, rupiah)."""
    _budget_reader(user)
    known = evaluation.budget_years(db)
    chosen = _budget_year(year, now, known)
    if chosen is None:
        return _bad_year(request)
    context = {"view": evaluation.yearly(db, chosen), "years": known, "stages": proposals.ALL_STAGES}
    return render(request, lang, "staff/yearly.html", context)


@router.get("/evaluasi/tahunan.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def yearly_csv(request: Request, db: SessionDep, now: NowDep, user: StaffUser, year: str = "") -> Response:
    _budget_reader(user)
    chosen = _budget_year(year, now, evaluation.budget_years(db))
    if chosen is None:
        return _bad_year(request)
    return Response(
        evaluation.yearly_csv(evaluation.yearly(db, chosen)),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="usulan-tahun-{chosen}.csv"',
            "Cache-Control": "no-store",
        },
    )
