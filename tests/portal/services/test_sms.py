"""The SMS adapter against a local fake of Twilio's Messages API (tests/support/sms.py), the GSM-7 rules
and every SMS text's length, and Indonesian mobile numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from bcc_common.gsm7 import BASIC, EXTENSION, SMS_SEPTETS, fit, septets, sms_text, to_gsm7
from bcc_common.net import free_port
from portal.i18n import translate
from portal.services.notify import EVENTS, report_sms
from portal.services.phone import mobile_id
from portal.services.proposals import ALL_STAGES
from portal.services.sms import SmsError, SmsSettings, TwilioSms
from tests.support.sms import FakeTwilio


def test_a_message_reaches_the_provider_as_it_documents_it(twilio: FakeTwilio) -> None:
    sms = TwilioSms(twilio.settings())
    sid = sms.send("+6281234567890", "Lapor Binjai: uji")
    [got] = twilio.messages
    assert (got.to, got.body, got.sender) == ("+6281234567890", "Lapor Binjai: uji", "+15005550006")
    assert sid == got.sid and sid.startswith("SM")
    # a Messaging Service as the sender goes as MessagingServiceSid
    service = "MG" + "f" * 32
    TwilioSms(twilio.settings(sender=service)).send("+6281234567890", "dua")
    assert twilio.messages[1].sender == service
    sms.close()


@pytest.mark.parametrize(
    ("mode", "permanent", "expect"),
    [
        ("down", False, "HTTP 503"),
        ("ratelimit", False, "HTTP 429"),
        ("slow", False, "ReadTimeout"),
        ("refused", True, "21211"),
        ("bad_token", True, "HTTP 401"),
        ("nothing_listens", False, "ConnectError"),
    ],
)
def test_failures_say_whether_a_retry_can_help(
    twilio: FakeTwilio, mode: str, permanent: bool, expect: str
) -> None:
    settings = twilio.settings(timeout_s=0.3)
    if mode in ("down", "ratelimit"):
        twilio.mode = mode
    elif mode == "slow":
        twilio.mode, twilio.delay_s = "slow", 1.0
    elif mode == "refused":
        twilio.refused_numbers.add("+6281234567890")
    elif mode == "bad_token":
        settings = twilio.settings(token="wrong")
    else:
        settings = twilio.settings(base_url=f"http://127.0.0.1:{free_port()}")
    sms = TwilioSms(settings)
    with pytest.raises(SmsError) as err:
        sms.send("+6281234567890", "x")
    assert err.value.permanent is permanent and expect in str(err.value)
    assert twilio.messages == []
    sms.close()


def test_settings_come_from_the_environment_with_the_token_from_a_file(tmp_path: Path) -> None:
    assert SmsSettings.from_env({}) is None
    token = tmp_path / "sms-token"
    token.write_text("s3cret\n")
    env = {
        "BCC_PORTAL_SMS_PROVIDER": "twilio",
        "BCC_PORTAL_SMS_ACCOUNT": "AC1",
        "BCC_PORTAL_SMS_TOKEN_FILE": str(token),
        "BCC_PORTAL_SMS_FROM": "+15005550006",
        "BCC_PORTAL_SMS_URL": "http://127.0.0.1:9",
    }
    got = SmsSettings.from_env(env)
    assert got is not None and (got.token, got.base_url, got.account) == (
        "s3cret",
        "http://127.0.0.1:9",
        "AC1",
    )
    with pytest.raises(ValueError, match="BCC_PORTAL_SMS_TOKEN"):
        SmsSettings.from_env({**env, "BCC_PORTAL_SMS_TOKEN_FILE": ""})  # no default credentials
    with pytest.raises(ValueError, match="BCC_PORTAL_SMS_TOKEN_FILE"):
        SmsSettings.from_env({**env, "BCC_PORTAL_SMS_TOKEN_FILE": str(tmp_path / "missing")})
    with pytest.raises(ValueError, match="twilio"):
        SmsSettings.from_env({**env, "BCC_PORTAL_SMS_PROVIDER": "carrier-pigeon"})


def test_gsm7_counts_the_extension_table_twice_and_replaces_what_it_lacks() -> None:
    assert len(BASIC) == 127 and len(EXTENSION) == 10  # 128 codes less the escape; 10 in the extension
    assert septets("Laporan") == 7 and septets("€[]") == 6 and septets("é") == 1
    with pytest.raises(ValueError):
        septets("ç")  # only the capital Ç is in the table
    assert to_gsm7("Suhu 27 °C – “panas” … ç ő 中") == 'Suhu 27 C - "panas" ... c o ?'
    assert to_gsm7(to_gsm7("Ünïcödé")) == to_gsm7("Ünïcödé")  # deterministic, stable
    # shortened to the budget without splitting an extension character in two
    assert fit("a" * 10, 10) == "a" * 10
    assert fit("abcdefghijk", 10) == "abcdefg..."
    assert fit("abcdef€€€€", 10) == "abcdef..." and septets(fit("abcde€€€€", 10)) <= 10
    text = sms_text("Alarm {m}: {url}", {"m": "x" * 300, "url": "https://e.id/k"}, shrink="m")
    assert septets(text) == SMS_SEPTETS and text.endswith("...: https://e.id/k")


# the longest a deployment's values get: a long public host name and a code whose symbols are all wide
LONGEST_URL = "https://pengaduan.binjaikota.go.id"
LONGEST_CODE = "BJ-WWWW-WWWW-WWWW"
STAGES = list(ALL_STAGES)


@pytest.mark.parametrize("lang", ["id", "en"])
def test_every_report_sms_fits_one_message_unshortened_in_both_languages(lang: str) -> None:
    url = f"{LONGEST_URL}/laporan/{LONGEST_CODE}"
    rendered = 0
    for event in EVENTS:
        for stage in STAGES if event == "proposal" else [None]:
            text = report_sms(event, lang, LONGEST_CODE, url, stage)
            assert text is not None
            assert septets(text) <= SMS_SEPTETS, text
            assert LONGEST_CODE in text and text.endswith(url) and "..." not in text, text  # nothing cut
            if stage is not None:
                assert to_gsm7(translate(f"stage_{stage}", "en" if lang == "en" else "id")) in text
            rendered += 1
    assert rendered == len(EVENTS) - 1 + len(STAGES)


@pytest.mark.parametrize("lang", ["fr", "", "ID", "en-US"])
def test_a_report_in_an_unknown_language_is_told_in_the_default_one(lang: str) -> None:
    """report_sms and the e-mail take the report's language by one rule (portal.reference.lang_or_default):
    anything that is not one of the portal's languages is Indonesian."""
    url = f"{LONGEST_URL}/laporan/{LONGEST_CODE}"
    for event in EVENTS:
        text, indonesian, english = (
            report_sms(event, k, LONGEST_CODE, url, "kua_ppas") for k in (lang, "id", "en")
        )
        assert text == indonesian != english


def test_a_longer_host_shortens_the_stage_never_the_code_or_link() -> None:
    url = "https://layanan-pengaduan-masyarakat.binjaikota.go.id/laporan/" + LONGEST_CODE
    text = report_sms("proposal", "en", LONGEST_CODE, url, "kua_ppas")
    assert text is not None and septets(text) <= SMS_SEPTETS and text.endswith(url) and "..." in text


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        ("081234567890", "+6281234567890"),
        ("0812-3456-7890", "+6281234567890"),
        ("+62 812 3456 7890", "+6281234567890"),
        ("62 81234567890", "+6281234567890"),
        ("(0852) 1234 567", "+628521234567"),
        ("0811234567", "+62811234567"),
        ("0061 2 9999 9999", None),  # not Indonesian
        ("061 4567890", None),  # a Medan landline
        ("0812", None),
        ("08123456789012345", None),
        ("0812 3456 789a", None),
        ("", None),
    ],
)
def test_indonesian_mobile_numbers_are_written_in_e164(typed: str, e164: str | None) -> None:
    assert mobile_id(typed) == e164


def test_serve_refuses_a_provider_without_its_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``bcc portal serve`` with ``BCC_PORTAL_SMS_PROVIDER`` but no token: exit 2 naming what is missing,
    before it listens (no default credentials)."""
    from bcc.cli import build_parser

    monkeypatch.setenv("BCC_PORTAL_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("BCC_PORTAL_DATABASE_URL", f"sqlite:///{tmp_path / 'portal.db'}")
    monkeypatch.setenv("BCC_PORTAL_MEDIA_DIR", str(tmp_path / "media"))
    monkeypatch.setenv("BCC_PORTAL_SMS_PROVIDER", "twilio")
    monkeypatch.setenv("BCC_PORTAL_SMS_ACCOUNT", "AC1")
    monkeypatch.setenv("BCC_PORTAL_SMS_FROM", "+15005550006")
    argv = ["portal", "serve", "--port", str(free_port())]
    args = build_parser(argv).parse_args(argv)
    assert __import__(args._module, fromlist=["run"]).run(args) == 2
    assert "SMS provider 'twilio' needs BCC_PORTAL_SMS_TOKEN (or _FILE)" in capsys.readouterr().err
