"""The report form's urlencoded fast path (portal.web.deps.read_form) parses exactly as Starlette does."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from urllib.parse import urlencode

import pytest
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.formparsers import FormParser
from starlette.requests import Request
from starlette.types import Message

from portal.web.deps import MAX_FORM_FIELDS, URLENCODED, read_form

BODIES = [
    b"",
    b"a=1&b=2&a=3",  # repeated names keep their order
    b"title=Jalan+rusak+di+Tangsi&empty=&flag",  # plus is a space, blank and valueless fields kept
    urlencode({"description": "Lampu mati 100% — sejak kemarin; tolong!", "kelurahan": "tangsi"}).encode(),
    b"nama=Dewi Sartika&kota=Binjai",  # raw UTF-8 and a space, as some clients send
    b"bad=%ZZ&half=%E2%82&amp=a%26b%3Dc",  # broken escapes and invalid UTF-8 are replaced, not fatal
    b"csrf_token=abc&website=&photos=",
]


def request(body: bytes, content_type: str = URLENCODED) -> Request:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/lapor",
        "headers": [(b"content-type", content_type.encode())],
        "query_string": b"",
    }
    return Request(scope, receive)


async def chunks(body: bytes) -> AsyncGenerator[bytes, None]:
    """The body as Starlette's parser gets it from a request stream, split mid-escape on purpose."""
    yield body[:5]
    yield body[5:]
    yield b""


@pytest.mark.parametrize("body", BODIES)
async def test_urlencoded_fast_path_equals_starlette(body: bytes) -> None:
    ours = await read_form(request(body))
    theirs = await FormParser(Headers({"content-type": URLENCODED}), chunks(body)).parse()
    assert [tuple(item) for item in ours.multi_items()] == [tuple(item) for item in theirs.multi_items()]


async def test_too_many_fields_is_a_400() -> None:
    body = "&".join(f"f{i}=x" for i in range(MAX_FORM_FIELDS + 1)).encode()
    with pytest.raises(HTTPException) as err:
        await read_form(request(body))
    assert err.value.status_code == 400
