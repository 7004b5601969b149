"""Reporters who chose SMS: the form's channel (no-JavaScript form and the web app's draft), each event as
one SMS through the outbox to a local fake of Twilio's API (tests/support/sms.py), exactly once across
workers, retried while the provider is down and never blocking a submission."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from portal.config import Settings
from portal.i18n import translate
from portal.main import create_app
from portal.models import Report
from portal.reference import Lang
from portal.runtime import runtime_of
from tests.support.portal_app import (
    FakeClock,
    csrf,
    notifier_of,
    outbox,
    portal_with_sms,
    report_form,
    report_id,
    staff_client,
    submit,
)
from tests.support.sms import FakeTwilio
from tests.support.wait import eventually_sync

SMS_FIELDS = {"notify_channel": "sms", "contact_phone": "0812-3456-7890", "contact_email": ""}


def submit_sms(client: TestClient, **fields: str) -> str:
    """A report through the form whose reporter chose SMS; its tracking code."""
    return submit(client, None, **{**SMS_FIELDS, **fields})


def reports_stored(app: FastAPI) -> int:
    with runtime_of(app).sessions() as db:
        return int(db.scalar(select(func.count()).select_from(Report)) or 0)


def test_a_reporter_who_chose_sms_is_told_each_step_by_sms(
    settings: Settings, clock: FakeClock, twilio: FakeTwilio
) -> None:
    with portal_with_sms(settings, clock, twilio) as (app, client):
        code = submit_sms(client, description="Rahasia: nomor rumah 12")
        first = twilio.wait(1)[0]
        link = f"{settings.public_url}/laporan/{code}"
        assert first.to == "+6281234567890" and code in first.body and first.body.endswith(link)
        assert first.body.startswith("Lapor Binjai: laporan Anda diterima")  # the form's language: id
        assert "Rahasia" not in first.body and "kunci" not in first.body  # no report text, no key
        with runtime_of(app).sessions() as db:
            stored = db.scalar(select(Report).where(Report.code == code))
            assert stored is not None and (stored.contact_phone, stored.notify_channel) == (
                "+6281234567890",
                "sms",
            )
        admin = staff_client(app, "admin")
        admin.post(
            f"/staf/laporan/{report_id(app, code)}/verifikasi", data={"csrf_token": csrf(admin, "/staf")}
        )
        second = twilio.wait(2)[1]
        assert "diverifikasi" in second.body and code in second.body
        eventually_sync(lambda: all(n.sent_at is not None for n in outbox(app)))
        assert [n.reporter_key for n in outbox(app)] == [None, None]  # the key was never kept for SMS
        # in English when the form was in English
        client.cookies.set("lang", "en")
        en_code = submit_sms(client)
        third = twilio.wait(3)[2]
        assert third.body.startswith("Lapor Binjai: we received your report") and en_code in third.body
        admin.close()
    assert notifier_of(app).sent == 3 and len(twilio.messages) == 3


def test_the_provider_down_never_blocks_a_report_and_the_sms_follows_when_it_is_back(
    settings: Settings, clock: FakeClock, twilio: FakeTwilio
) -> None:
    """The provider hangs (then times out), then answers 503, then is back: reports are accepted all
    along, even while an SMS request hangs, and each reporter gets their SMS once it is back."""
    twilio.mode, twilio.delay_s = "slow", 10.0
    with portal_with_sms(settings, clock, twilio, timeout_s=6.0) as (app, client):
        first = submit_sms(client)
        eventually_sync(lambda: twilio.in_flight == 1, what="the first SMS hangs at the provider")
        second = submit_sms(client)  # accepted while the provider holds the first SMS
        assert twilio.in_flight == 1 and twilio.messages == []
        assert client.get(f"/laporan/{second}").status_code == 200
        twilio.mode = "down"
        eventually_sync(lambda: any("HTTP 503" in r.error for r in outbox(app)), timeout=20)
        rows = outbox(app)
        assert all(r.sent_at is None and r.failed_at is None for r in rows)
        assert "ReadTimeout" in rows[0].error or rows[0].attempts >= 2  # the hang counted as a failure
        twilio.mode = "up"
        messages = twilio.wait(2, timeout=30)
        assert sorted(code for m in messages for code in (first, second) if code in m.body) == sorted(
            [first, second]
        )
        eventually_sync(lambda: all(r.sent_at is not None for r in outbox(app)))
    assert notifier_of(app).sent == 2 and len(twilio.messages) == 2


def test_two_workers_send_a_waiting_sms_exactly_once(
    settings: Settings, clock: FakeClock, twilio: FakeTwilio
) -> None:
    twilio.mode = "down"
    with portal_with_sms(settings, clock, twilio) as (app, client):
        code = submit_sms(client)
        eventually_sync(lambda: twilio.requests >= 1 and outbox(app)[0].attempts >= 1)
    twilio.mode = "up"
    with (
        portal_with_sms(settings, clock, twilio) as (one, _c1),
        portal_with_sms(settings, clock, twilio) as (two, _c2),
    ):
        eventually_sync(lambda: outbox(one)[0].sent_at is not None, timeout=15)
        assert notifier_of(one).sent + notifier_of(two).sent == 1
    [message] = twilio.messages
    assert code in message.body


def test_a_number_the_provider_refuses_is_given_up_at_once(
    settings: Settings, clock: FakeClock, twilio: FakeTwilio
) -> None:
    twilio.refused_numbers.add("+6281234567890")
    with portal_with_sms(settings, clock, twilio) as (app, client):
        submit_sms(client)
        eventually_sync(lambda: notifier_of(app).failed == 1)
        [row] = outbox(app)
        assert row.attempts == 1 and row.failed_at is not None and "21211" in row.error
        assert row.reporter_key is None
    assert twilio.requests == 1 and twilio.messages == []


def test_a_provider_answer_without_a_sid_counts_as_sent_and_is_never_retried(
    settings: Settings, clock: FakeClock, twilio: FakeTwilio, caplog: pytest.LogCaptureFixture
) -> None:
    """Twilio took the message (201) but its body has no readable sid: sending again would deliver the
    SMS twice (review item 5). Sent, with a warning."""
    twilio.mode = "nosid"
    with (
        caplog.at_level(logging.WARNING, logger="portal.services.sms"),
        portal_with_sms(settings, clock, twilio) as (app, client),
    ):
        code = submit_sms(client)
        eventually_sync(lambda: outbox(app)[0].sent_at is not None, timeout=10)
        [row] = outbox(app)
        assert row.attempts == 1 and row.failed_at is None and row.error == ""
        assert notifier_of(app).sent == 1 and notifier_of(app).failed == 0
    [message] = twilio.messages
    assert code in message.body and twilio.requests == 1
    assert any("without a message sid" in r.getMessage() for r in caplog.records)


def post_form(client: TestClient, lang: Lang = "id", **fields: str) -> Any:
    data = {"csrf_token": csrf(client), **report_form(**fields)}
    return client.post(f"/lapor?lang={lang}", data=data, follow_redirects=False)


@pytest.mark.parametrize("lang", ["id", "en"])
def test_bad_channel_input_is_refused_in_the_users_language_and_nothing_is_stored(
    settings: Settings, clock: FakeClock, twilio: FakeTwilio, lang: Lang
) -> None:
    with portal_with_sms(settings, clock, twilio) as (app, client):
        page = client.get(f"/lapor?lang={lang}").text
        assert 'name="notify_channel" value="sms"' in page and translate("f_notify_channel", lang) in page
        for fields, key in (
            ({"notify_channel": "sms", "contact_phone": ""}, "err_phone_sms"),
            ({"notify_channel": "sms", "contact_phone": "061 4567890"}, "err_phone_sms"),  # a landline
            ({"notify_channel": "fax"}, "err_channel"),
        ):
            r = post_form(client, lang, **fields)
            assert r.status_code == 400 and translate(key, lang) in r.text, fields
        # the web app's draft path gives the same message as JSON
        data = {
            "csrf_token": csrf(client),
            "draft_key": "a" * 32,
            **report_form(notify_channel="sms", contact_phone="12"),
        }
        r = client.post(f"/lapor/draf?lang={lang}", data=data)
        assert r.status_code == 400 and r.json()["errors"]["contact_phone"] == translate(
            "err_phone_sms", lang
        )
        assert reports_stored(app) == 0
    assert twilio.requests == 0


def test_without_a_provider_the_form_offers_no_sms_and_refuses_it(
    settings: Settings, clock: FakeClock
) -> None:
    app = create_app(settings, clock=clock.now)
    with TestClient(app) as client:
        assert 'name="notify_channel"' not in client.get("/lapor").text
        r = post_form(client, "id", **SMS_FIELDS)
        assert r.status_code == 400 and translate("err_sms_unavailable", "id") in r.text
        assert reports_stored(app) == 0


def test_an_offline_draft_keeps_its_sms_channel(
    settings: Settings, clock: FakeClock, twilio: FakeTwilio
) -> None:
    with portal_with_sms(settings, clock, twilio) as (app, client):
        data = {"csrf_token": csrf(client), "draft_key": "d" * 32, **report_form(**SMS_FIELDS)}
        first = client.post("/lapor/draf", data=data)
        again = client.post("/lapor/draf", data=data)  # a replay over a flaky connection
        assert first.status_code == 200 and again.json()["code"] == first.json()["code"]
        [message] = twilio.wait(1)
        assert message.to == "+6281234567890" and first.json()["code"] in message.body
        eventually_sync(lambda: all(n.sent_at is not None for n in outbox(app)))
    assert len(twilio.messages) == 1
