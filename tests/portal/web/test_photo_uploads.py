"""Photos through the real routes: a picture with too many pixels is a clear 400 in the user's language
(never a 500) on the report form and on Open311 in both formats; a phone's MPO photo is accepted."""

from __future__ import annotations

import io
import json
from xml.etree import ElementTree as ET

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from portal.i18n import translate
from portal.runtime import runtime_of
from portal.services import reports
from tests.portal.services.test_photos import segments, with_header_size
from tests.support.portal_app import API_KEY, csrf, jpeg, report_form, submit

BOMB = with_header_size(jpeg(), 20_000, 10_000)  # 200 Mpx declared by a real JPEG's frame header


@pytest.mark.parametrize("lang", ["id", "en"])
def test_report_form_refuses_too_many_pixels_in_the_users_language(client: TestClient, lang: str) -> None:
    client.cookies.set("lang", lang)
    data = {"csrf_token": csrf(client), **report_form()}
    r = client.post(
        "/lapor", data=data, files=[("photos", ("besar.jpg", BOMB, "image/jpeg"))], follow_redirects=False
    )
    assert r.status_code == 400, r.text
    assert translate("photo_too_many_pixels", "en" if lang == "en" else "id") in r.text
    assert r.context["errors"] == {"photos": "photo_too_many_pixels"}


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_open311_refuses_too_many_pixels_with_a_spec_error(client: TestClient, fmt: str) -> None:
    data = {
        "api_key": API_KEY,
        "service_code": "kesehatan",
        "address_string": "Jl. Gatot Subroto, Kartini",
        "description": "Genangan di depan puskesmas.",
    }
    r = client.post(
        f"/open311/v2/requests.{fmt}?lang=en",
        data=data,
        files=[("media", ("besar.jpg", BOMB, "image/jpeg"))],
    )
    assert r.status_code == 400, r.text
    if fmt == "json":
        description = json.loads(r.text)[0]["description"]
    else:
        description = ET.fromstring(r.text).findtext("error/description") or ""
    assert description == f"Invalid: media ({translate('photo_too_many_pixels', 'en')})"


def test_mpo_photo_from_a_phone_is_accepted_by_the_form(app: FastAPI, client: TestClient) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(
        buf, "MPO", save_all=True, append_images=[Image.new("RGB", (64, 48), (30, 30, 200))]
    )
    code = submit(client, photos=[buf.getvalue()])
    with runtime_of(app).sessions() as db:
        (photo,) = reports.get_by_code(db, code).photos
    stored = (runtime_of(app).settings.media_dir / photo.filename).read_bytes()
    assert all(m != 0xE2 for m, _ in segments(stored))  # a plain JPEG: the MPF index is gone
    with Image.open(io.BytesIO(stored)) as img:
        assert img.format == "JPEG" and (img.width, img.height) == (64, 48)
