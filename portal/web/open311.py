"""Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2) over the same services as the pages.

JSON and XML (the spec's required format) by path suffix; errors are the spec's array of
``{code, description}``; contact fields are accepted on POST and never returned. Each category is a
realtime service whose definition has a required ``kelurahan`` attribute (the portal routes by it).
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from xml.etree import ElementTree as ET

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from starlette.datastructures import UploadFile

from bcc_common.timefmt import iso
from portal.errors import InvalidInput
from portal.i18n import translate
from portal.models import OPEN_STATUSES, Report
from portal.reference import Reference
from portal.services import proposals, reports, visibility
from portal.services.workflow import due_of
from portal.web.deps import NowDep, RefDep, SessionDep, SettingsDep, SinkDep, lang_of, public_write_allowed
from portal.web.open311_format import Open311Error, respond
from portal.web.submission import policy, read_photos_async

BOTH_FORMATS: dict[str, Any] = {"content": {"application/json": {}, "text/xml": {}}}
router = APIRouter(
    prefix="/open311",
    tags=["open311"],
    default_response_class=Response,
    responses={
        code: {"description": text, **BOTH_FORMATS}
        for code, text in (
            (200, "OK"),
            (400, "Open311 error array"),
            (403, "Invalid api_key"),
            (404, "Not found"),
        )
    },
)
MAX_SPAN = timedelta(days=90)
MAX_ROWS = 1000
CONTACT = {"email": "contact_email", "phone": "contact_phone"}


def _check(fmt: str, jurisdiction_id: str | None, ref_jurisdiction: str) -> None:
    if fmt not in ("json", "xml"):
        raise Open311Error(404, "Unknown format: use .json or .xml")
    if jurisdiction_id and jurisdiction_id != ref_jurisdiction:
        raise Open311Error(404, f"jurisdiction_id not found: this endpoint serves {ref_jurisdiction}")


@router.get("/discovery.{fmt}")
def discovery(fmt: str, settings: SettingsDep) -> Response:
    _check(fmt, None, settings.jurisdiction_id)
    endpoint: dict[str, Any] = {
        "specification": "http://wiki.open311.org/GeoReport_v2",
        "url": f"{settings.public_url}/open311/v2",
        "changeset": "2026-11-28T00:00:00Z",
        "type": "production",
        "formats": ["text/xml", "application/json"],
    }
    data: dict[str, Any] = {
        "changeset": "2026-11-28T00:00:00Z",
        "contact": "Binjai Command Center, Dinas Kominfo Kota Binjai",
        "key_service": f"{settings.public_url}/staf (API keys are issued by the BCC admins)",
        "endpoints": [endpoint],
    }
    if fmt == "xml":
        top = ET.Element("discovery")
        for key in ("changeset", "contact", "key_service"):
            ET.SubElement(top, key).text = str(data[key])
        node_ep = ET.SubElement(ET.SubElement(top, "endpoints"), "endpoint")
        for key, value in endpoint.items():
            node = ET.SubElement(node_ep, key)
            if key == "formats":
                for f in value:
                    ET.SubElement(node, "format").text = f
            else:
                node.text = value
        return Response(
            b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(top, encoding="utf-8"),
            media_type="text/xml; charset=utf-8",
        )
    return respond(fmt, "discovery", "discovery", data)


def service_item(ref: Reference, key: str, lang: str) -> dict[str, Any]:
    cat = ref.categories[key]
    return {
        "service_code": key,
        "service_name": cat.name.get(lang),
        "description": cat.description.get(lang),
        "metadata": True,
        "type": "realtime",
        "keywords": key.replace("_", ","),
        "group": cat.group.get(lang),
    }


@router.get("/v2/services.{fmt}")
def services(
    fmt: str, ref: RefDep, settings: SettingsDep, jurisdiction_id: str | None = None, lang: str = "id"
) -> Response:
    _check(fmt, jurisdiction_id, settings.jurisdiction_id)
    return respond(fmt, "services", "service", [service_item(ref, k, lang) for k in ref.categories])


@router.get("/v2/services/{service_code}.{fmt}")
def service_definition(
    service_code: str, fmt: str, ref: RefDep, settings: SettingsDep, jurisdiction_id: str | None = None
) -> Response:
    _check(fmt, jurisdiction_id, settings.jurisdiction_id)
    if service_code not in ref.categories:
        raise Open311Error(404, f"service_code not found: {service_code}")
    kelurahan = [{"key": k, "name": v} for k, v in ref.all_kelurahan().items()]
    privacy = [{"key": p, "name": p} for p in ("public", "anonymous", "confidential")]
    attributes = [
        {
            "variable": True,
            "code": "kelurahan",
            "datatype": "singlevaluelist",
            "required": True,
            "datatype_description": "Kelurahan of Binjai",
            "order": 1,
            "description": "Kelurahan",
            "values": kelurahan,
        },
        {
            "variable": True,
            "code": "title",
            "datatype": "string",
            "required": False,
            "datatype_description": "At most 200 characters",
            "order": 2,
            "description": "Judul / title",
            "values": [],
        },
        {
            "variable": True,
            "code": "privacy",
            "datatype": "singlevaluelist",
            "required": False,
            "datatype_description": "public (default), anonymous or confidential",
            "order": 3,
            "description": "Privacy",
            "values": privacy,
        },
    ]
    return respond(
        fmt,
        "service_definition",
        "service_definition",
        {"service_code": service_code, "attributes": attributes},
    )


def request_item(
    report: Report, ref: Reference, base_url: str, proposal_stage: str | None = None
) -> dict[str, Any]:
    """A request as GET returns it: no contact field ever. A needs-budget report's ``status_notes``
    names its development proposal's stage (``proposal_stage``, portal/services/proposals.py)."""
    closed = report.status == "closed"
    due = due_of(report)
    kel = ref.kelurahan_name(report.kelurahan)
    kec = ref.kecamatan[report.kecamatan].name if report.kecamatan in ref.kecamatan else report.kecamatan
    return {
        "service_request_id": report.code,
        "status": "closed" if closed else "open",
        "status_notes": _status_notes(report, proposal_stage),
        "service_name": ref.categories[report.category].name.id
        if report.category in ref.categories
        else report.category,
        "service_code": report.category,
        "description": report.description,
        "agency_responsible": ref.agencies[report.agency].name if report.agency in ref.agencies else "",
        "service_notice": "",
        "requested_datetime": iso(report.created_at),
        "updated_datetime": iso(report.closed_at if closed and report.closed_at else report.updated_at),
        "expected_datetime": iso(due) if due else None,
        "address": ", ".join(p for p in (report.address, kel, kec, "Binjai") if p),
        "address_id": "",
        "zipcode": "",
        "lat": report.lat,
        "long": report.lon,
        "media_url": f"{base_url}/foto/{report.photos[0].filename}" if report.photos else "",
    }


def _status_notes(report: Report, proposal_stage: str | None) -> str:
    notes = report.resolution or report.status
    if report.resolution == "needs_budget" and proposal_stage:
        notes += f"; usulan pembangunan: {translate('stage_' + proposal_stage, 'id')} ({proposal_stage})"
    return notes


def _items(db: Session, rows: list[Report], ref: Reference, base_url: str) -> list[dict[str, Any]]:
    stages = proposals.stages_of_reports(db, [r.id for r in rows if r.resolution == "needs_budget"])
    return [request_item(r, ref, base_url, stages.get(r.id)) for r in rows]


def _date(value: str | None, name: str) -> datetime | None:
    """A W3C datetime as UTC; 400 when it is none or has no UTC equivalent (0001-01-01T00:00+07:00)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError) as err:
        raise Open311Error(400, f"{name} must be a W3C datetime, e.g. 2026-11-01T00:00:00Z") from err


def _shift(moment: datetime, delta: timedelta) -> datetime:
    """``moment + delta``, stopping at the first or last representable instant: the default window of
    a date at either end of the calendar (0001-01-01, 9999-12-31) is cut there, not an overflow."""
    try:
        return moment + delta
    except OverflowError:
        return (datetime.max if delta > timedelta(0) else datetime.min).replace(tzinfo=UTC)


def _list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@router.get("/v2/requests.{fmt}")
def get_requests(
    fmt: str,
    db: SessionDep,
    ref: RefDep,
    settings: SettingsDep,
    now: NowDep,
    jurisdiction_id: str | None = None,
    service_request_id: str | None = None,
    service_code: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    status: str | None = None,
) -> Response:
    _check(fmt, jurisdiction_id, settings.jurisdiction_id)
    query = select(Report).options(selectinload(Report.photos))
    if ids := _list(service_request_id):
        # overrides every other filter (spec), and finds what ``GET /requests/{id}`` finds (a client
        # polling its own fresh requests): by tracking code, not only listed reports
        codes = [reports.normalize_code(i) for i in ids[:MAX_ROWS]]
        query = query.where(Report.code.in_(codes), visibility.not_confidential())
    else:
        query = query.where(visibility.listed())
        start, end = _date(start_date, "start_date"), _date(end_date, "end_date")
        if start and end and end - start > MAX_SPAN:
            raise Open311Error(400, "start_date and end_date may not span more than 90 days")
        end = end or (min(now, _shift(start, MAX_SPAN)) if start else now)
        start = start or _shift(end, -MAX_SPAN)
        query = query.where(Report.created_at >= start, Report.created_at <= end)
        if codes := _list(service_code):
            query = query.where(Report.category.in_(codes))
        wanted = set(_list(status))
        if wanted - {"open", "closed"}:
            raise Open311Error(400, "status must be open, closed or both (comma-separated)")
        if wanted == {"open"}:
            query = query.where(Report.status.in_(OPEN_STATUSES))
        elif wanted == {"closed"}:
            query = query.where(Report.status == "closed")
    rows = list(db.scalars(query.order_by(Report.created_at.desc()).limit(MAX_ROWS)))
    return respond(fmt, "service_requests", "request", _items(db, rows, ref, settings.public_url))


@router.get("/v2/requests/{request_id}.{fmt}")
def get_request(
    request_id: str,
    fmt: str,
    db: SessionDep,
    ref: RefDep,
    settings: SettingsDep,
    jurisdiction_id: str | None = None,
) -> Response:
    _check(fmt, jurisdiction_id, settings.jurisdiction_id)
    report = db.scalar(
        select(Report)
        .where(Report.code == reports.normalize_code(request_id), visibility.not_confidential())
        .options(selectinload(Report.photos))
    )
    if report is None:
        raise Open311Error(404, f"service_request_id not found: {request_id}")
    return respond(fmt, "service_requests", "request", _items(db, [report], ref, settings.public_url))


@router.post("/v2/requests.{fmt}")
async def post_request(
    request: Request,
    fmt: str,
    db: SessionDep,
    ref: RefDep,
    settings: SettingsDep,
    sink: SinkDep,
    now: NowDep,
    api_key: Annotated[str, Form()] = "",
    service_code: Annotated[str, Form()] = "",
    jurisdiction_id: Annotated[str, Form()] = "",
    lat: Annotated[str, Form()] = "",
    long: Annotated[str, Form()] = "",
    address_string: Annotated[str, Form()] = "",
    address_id: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    phone: Annotated[str, Form()] = "",
    first_name: Annotated[str, Form()] = "",
    last_name: Annotated[str, Form()] = "",
) -> Response:
    from fastapi.concurrency import run_in_threadpool

    _check(fmt, jurisdiction_id, settings.jurisdiction_id)
    if not any(
        hmac.compare_digest(api_key.encode(), k.get_secret_value().encode())
        for k in settings.open311_api_keys
    ):
        raise Open311Error(403, "Invalid api_key received -- can't proceed with create_request.")
    if not await run_in_threadpool(public_write_allowed, request):  # per client address, as on the web
        raise Open311Error(429, "Too many requests from this address; try again later")
    if service_code not in ref.categories:
        raise Open311Error(404, f"service_code not found: {service_code}")
    if not ((lat and long) or address_string or address_id):
        raise Open311Error(400, "A location is required: lat and long, address_string or address_id")
    form = await request.form()
    if any(isinstance(v, str) and "\x00" in v for _k, v in form.multi_items()):
        raise Open311Error(400, "NUL characters are not allowed")
    # Photos as multipart ``media`` parts (FixMyStreet's extension of POST requests), through the same
    # pipeline as the web form: decoded by content, re-encoded without EXIF/GPS. ``media_url`` is not
    # fetched: a server that downloads URLs named by clients can be turned against its own network.
    uploads = [v for v in form.getlist("media") if isinstance(v, UploadFile)]
    photos = await read_photos_async(uploads, settings.max_photo_bytes)  # count checked with the rest
    attrs = {
        str(k)[10:-1]: str(v)
        for k, v in form.multi_items()
        if str(k).startswith("attribute[") and str(k).endswith("]")
    }
    kelurahan = attrs.get("kelurahan", "")
    if not kelurahan:  # accept a kelurahan named in the address, as a person would write it
        lowered = address_string.lower()
        kelurahan = next((k for k, name in ref.all_kelurahan().items() if name.lower() in lowered), "")
    inp = reports.ReportInput(
        category=service_code,
        title=attrs.get("title") or description.strip().split("\n")[0][:80],
        description=description,
        kelurahan=kelurahan,
        address=address_string,
        lat=lat,
        lon=long,
        privacy=attrs.get("privacy", "public"),
        contact_name=f"{first_name} {last_name}".strip(),
        contact_phone=phone,
        contact_email=email,
    )
    try:
        report = await run_in_threadpool(
            reports.create_report, db, ref, inp, photos, policy(settings), sink, now, "open311"
        )
    except InvalidInput as err:
        names = {
            "kelurahan": "attribute[kelurahan]",
            "lat": "lat/long",
            "contact_phone": "phone",
            "contact_email": "email",
            "photos": "media",
        }
        detail = "Invalid: " + ", ".join(names.get(k, k) for k in err.errors)
        if reason := err.errors.get("photos"):  # say why, as the form does (too many pixels, wrong type...)
            detail += f" ({translate(reason, lang_of(request))})"
        raise Open311Error(400, detail) from err
    return respond(
        fmt,
        "service_requests",
        "request",
        [{"service_request_id": report.code, "service_notice": "", "account_id": None}],
    )
