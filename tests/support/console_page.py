"""Reading and clicking the operator console in Chromium (tests/support/cdp.py drives the browser)."""

from __future__ import annotations

import json

from fastapi import FastAPI

from tests.support.cdp import Page
from tests.support.portal_app import Login
from tests.support.staff_login import totp_code
from tests.support.wait import eventually


def circuit(device: str, point: str) -> str:
    return f'li.circuit[data-device="{device}"][data-point="{point}"]'


async def click_switch(page: Page, device: str, point: str, value: str) -> None:
    sel = f"{circuit(device, point)} form.cmd input[name=value][value={value}]"
    await page.eval(
        f"document.querySelector({json.dumps(sel)}).closest('form').querySelector('button').click()"
    )


async def text_of(page: Page, selector: str) -> str:
    value: str = await page.eval(
        f"(document.querySelector({json.dumps(selector)}) || {{}}).textContent || ''"
    )
    return value.strip()


async def wait_text(page: Page, selector: str, expected: str, timeout: float = 10.0) -> None:
    async def shown() -> bool:
        return expected in await text_of(page, selector)

    await eventually(shown, timeout)


async def log_in(page: Page, base_url: str, app: FastAPI, who: Login) -> None:
    """The staff login form, then the second factor (admins and operators) as a person types it."""
    await page.goto(f"{base_url}/staf/masuk")
    await page.fill("#username", who.username)
    await page.fill("#password", who.password)
    await page.click_and_wait("form button[type=submit]")
    if who.totp_secret is not None:
        await page.fill("#code", totp_code(app, who.username, who.totp_secret))
        await page.click_and_wait("form button[type=submit]")
