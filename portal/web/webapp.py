"""The installable web app (docs/portal.md, "Web app"): its manifest, its service worker, the offline
drafts' endpoint and the form's "use my location" lookup. The pages themselves stay plain HTML forms
that work without JavaScript; ``/static/app.js`` adds the drafts and the location button where
scripts run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from starlette.responses import Response

from portal.i18n import translate
from portal.reference import lang_or_default
from portal.services import location, reports
from portal.web import submission
from portal.web.deps import LangDep, RefDep, read_form, runtime_from, verify_csrf

router = APIRouter()
STATIC = Path(__file__).resolve().parents[1] / "static"
NO_STORE = {"Cache-Control": "no-store"}


def manifest(lang: str) -> dict[str, Any]:
    return {
        "name": "Lapor Binjai",
        "short_name": "Lapor Binjai",
        "description": translate("tagline", lang_or_default(lang)),
        "lang": lang,
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#0b3d91",
        "icons": [
            {"src": "/static/icon-192.png", "sizes": "192x192", "type": "image/png", "purpose": "any"},
            {"src": "/static/icon-512.png", "sizes": "512x512", "type": "image/png", "purpose": "any"},
            {
                "src": "/static/icon-maskable-512.png",
                "sizes": "512x512",
                "type": "image/png",
                "purpose": "maskable",
            },
        ],
    }


@router.get("/manifest.webmanifest", include_in_schema=False)  # files of the web app, not an API
def web_manifest(lang: LangDep) -> Response:
    return JSONResponse(
        manifest(lang), media_type="application/manifest+json", headers={"Cache-Control": "max-age=3600"}
    )


@router.get("/sw.js", include_in_schema=False)
def service_worker() -> Response:
    """The service worker, served from the root so that its scope is the whole portal; always
    revalidated, so a new version reaches phones on their next visit."""
    return FileResponse(STATIC / "sw.js", media_type="text/javascript", headers={"Cache-Control": "no-cache"})


@router.get("/robots.txt", include_in_schema=False)
def robots() -> Response:
    return PlainTextResponse("User-agent: *\nDisallow: /staf\nDisallow: /konsol\nDisallow: /dinding\n")


@router.post("/lapor/draf")
async def submit_draft(request: Request) -> Response:
    """An offline draft sent by the web app (portal.web.submission.submit_draft): JSON."""
    form = await read_form(request)
    try:
        await verify_csrf(request, form)
        return await submission.submit_draft(runtime_from(request), request, form)
    finally:
        await form.close()


@router.get("/lapor/lokasi")
def locate(lang: LangDep, ref: RefDep, lat: str = "", lon: str = "") -> Response:
    """The kelurahan at a point (the form's "use my location"): ``{"kelurahan", "name", "kecamatan"}``,
    or 400 ``{"error"}`` with the form's own message for a point outside Binjai."""
    try:
        point = reports.parse_point(lat[:20], lon[:20])
    except reports.OutsideBinjai:
        return JSONResponse({"error": translate("err_outside", lang)}, 400, headers=NO_STORE)
    except ValueError:
        point = None
    key = None if point is None else location.kelurahan_at(*point)
    kec = None if key is None else ref.kecamatan_of(key)
    if key is None or kec is None:
        return JSONResponse({"error": translate("err_point", lang)}, 400, headers=NO_STORE)
    body = {"kelurahan": key, "name": kec.kelurahan[key], "kecamatan": kec.name}
    return JSONResponse(body, headers=NO_STORE)
