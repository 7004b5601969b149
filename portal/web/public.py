"""Public pages: home, the report form with similar-report suggestions, code lookup and "Laporan saya",
the public list and its map (a report's own pages are portal.web.status)."""

from __future__ import annotations

from functools import cache
from itertools import pairwise

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.responses import Response

from portal.models import STATUSES, Report
from portal.services import location, reports
from portal.web import reporter, submission
from portal.web.deps import (
    CsrfDep,
    LangDep,
    RefDep,
    SessionDep,
    lang_of,
    public_write_allowed,
    read_form,
    reject_nul,
    render,
    runtime_from,
    settings_of,
    verify_csrf,
)

router = APIRouter(default_response_class=HTMLResponse)


@router.get("/")
def home(request: Request, lang: LangDep, ref: RefDep) -> Response:
    return render(request, lang, "home.html", {"categories": list(ref.categories.values())})


@router.get("/lapor")
def report_form(
    request: Request,
    lang: LangDep,
    db: SessionDep,
    category: str = "",
    kelurahan: str = "",
    title: str = "",
    lat: str = "",
    lon: str = "",
) -> Response:
    inp = reports.ReportInput(
        category=category, kelurahan=kelurahan, title=title[:200], lat=lat[:20], lon=lon[:20]
    )
    return submission.form_page(request, lang, db, inp, {})


# The form as OpenAPI sees it. The route reads the parsed form itself instead of declaring thirteen
# ``Form()`` parameters: FastAPI's per-parameter validation cost more than the insert (0.4 ms of a
# 0.7 ms request; docs/performance.md, "Portal"), and every field is a plain string checked by
# ``reports.validate`` anyway.
FORM_TEXT_FIELDS = ["csrf_token", *submission.REPORT_FIELDS, "website", "remember"]  # website: the honeypot
REPORT_FORM_SCHEMA = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        **{name: {"type": "string"} for name in FORM_TEXT_FIELDS},
                        "photos": {"type": "array", "items": {"type": "string", "format": "binary"}},
                    },
                }
            },
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {
                        **{name: {"type": "string"} for name in FORM_TEXT_FIELDS},
                    },
                }
            },
        }
    }
}


@router.post("/lapor", openapi_extra=REPORT_FORM_SCHEMA)
async def submit_report(request: Request) -> Response:
    """The citizen's report form: async, no dependencies (the CSRF check is called here, not resolved
    by FastAPI: a generator dependency costs as much as the insert), the insert through the
    group-commit writer (portal.services.report_writer). Plain urlencoded submissions, the hot path of
    ``bcc bench portal``, reach ``submission.submit_form`` through portal.web.fastpath instead."""
    form = await read_form(request)  # size-capped by BodyLimitMiddleware; closed below in every case
    try:
        await verify_csrf(request, form)
        return await submission.submit_form(runtime_from(request), request, form)
    finally:
        await form.close()


@router.post("/lapor/serupa")
async def check_similar(request: Request) -> Response:
    """The form's "check similar reports" button: the form again, as typed, with the similar reports
    listed. POST (never GET), so that nothing typed - a name, a phone number, an e-mail - lands in a
    URL, the browser history or an access log; photos chosen are not kept (the browser drops them)."""
    form = await read_form(request)
    try:
        await verify_csrf(request, form)
        reject_nul(form)
        if not await run_in_threadpool(public_write_allowed, request):
            raise HTTPException(429, "Too many requests")
        values = {name: form.get(name, default) for name, default in submission.REPORT_FIELDS.items()}
        inp = reports.ReportInput(**{k: v[:4000] if isinstance(v, str) else "" for k, v in values.items()})
        runtime = runtime_from(request)

        def page() -> Response:
            with runtime.sessions() as db:
                return submission.form_page(request, lang_of(request), db, inp, {})

        return await run_in_threadpool(page)
    finally:
        await form.close()


@router.get("/lacak")
def track(request: Request, lang: LangDep, db: SessionDep, kode: str = "") -> Response:
    code = reports.normalize_code(kode)
    if code:
        return RedirectResponse(f"/laporan/{code}", status_code=303)
    mine = reports.by_codes(db, submission.remembered(request))
    context = {
        "code": kode[:40],
        "not_found": bool(kode),
        # the cookie is the browser's to forge: a confidential report only with its key
        "mine": [r for r in mine if reporter.may_see(request, r)],
    }
    return render(request, lang, "track.html", context, 404 if kode else 200)


@router.post("/lacak/lupakan", dependencies=[CsrfDep])
def forget_reports(request: Request) -> Response:
    """Forget every report remembered on this device."""
    response = RedirectResponse("/lacak", status_code=303)
    response.delete_cookie(
        submission.MINE_COOKIE, httponly=True, samesite="lax", secure=settings_of(request).cookie_secure
    )
    return response


def svg_xy(lat: float, lon: float) -> tuple[float, float]:
    """A point's SVG coordinates on the map: a 400 x 600 box over reports.BBOX, north up."""
    south, north, west, east = reports.BBOX
    return round((lon - west) / (east - west) * 400, 1), round((north - lat) / (north - south) * 600, 1)


def map_points(rows: list[Report]) -> list[dict[str, object]]:
    """SVG coordinates of the reports that carry a map point."""
    points: list[dict[str, object]] = []
    for r in rows:
        if r.lat is not None and r.lon is not None:
            x, y = svg_xy(r.lat, r.lon)
            points.append({"x": x, "y": y, "report": r})
    return points


def _num(v: float) -> str:
    """``v`` to one decimal, as short as SVG allows (``-0.5`` as ``-.5``)."""
    text = f"{round(v, 1):g}"
    return text.replace("0.", ".", 1) if text.startswith(("0.", "-0.")) else text


@cache
def kelurahan_map() -> tuple[str, tuple[tuple[str, str], ...]]:
    """The map's viewBox (the city with a margin) and each kelurahan's SVG path, from the boundaries
    shipped in portal/data/kelurahan.json (portal.services.location). On /daftar each shape is a link to
    the form with that kelurahan chosen (``/lapor?kelurahan=...``): a tap picks it, with or without
    JavaScript."""
    shapes = []
    xs: list[float] = []
    ys: list[float] = []
    for area in location.areas():
        rings = []
        for ring in area.rings:
            points = [svg_xy(lat, lon) for lat, lon in ring]
            kept = [p for i, p in enumerate(points) if i == 0 or p != points[i - 1]]
            xs += [x for x, _ in kept]
            ys += [y for _, y in kept]
            # relative moves between the rounded points (a third shorter than absolute ones, no drift)
            steps = [_num(x - px) + " " + _num(y - py) for (px, py), (x, y) in pairwise(kept)]
            rings.append(f"M{_num(kept[0][0])} {_num(kept[0][1])}l" + " ".join(steps) + "z")
        shapes.append((area.key, "".join(rings)))
    margin = 4
    box = (min(xs) - margin, min(ys) - margin, max(xs) - min(xs) + 2 * margin, max(ys) - min(ys) + 2 * margin)
    return " ".join(f"{v:g}" for v in (round(b, 1) for b in box)), tuple(sorted(shapes))


@router.get("/daftar")
def public_list(
    request: Request, lang: LangDep, db: SessionDep, category: str = "", kelurahan: str = "", page: int = 1
) -> Response:
    page = min(max(page, 1), 1000)
    rows = reports.public_list(db, category, kelurahan, limit=50, offset=(page - 1) * 50)
    context = {
        "reports": rows,
        "category": category,
        "kelurahan": kelurahan,
        "page": page,
        "statuses": STATUSES,
        "points": map_points(rows),
        "map": kelurahan_map(),
    }
    return render(request, lang, "list.html", context)
