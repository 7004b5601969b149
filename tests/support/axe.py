"""axe-core in the test browser: fetched once from npm into var/node, run on a page for serious issues."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.support.cdp import Page
from tests.support.paths import ROOT

AXE_VERSION = "4.14.1"
AXE = ROOT / "var" / "node" / "node_modules" / "axe-core" / "axe.min.js"


def axe_source() -> str:
    if not AXE.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm not installed: needed once to fetch axe-core")
        AXE.parents[2].mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--no-save", "--no-audit", "--no-fund", f"axe-core@{AXE_VERSION}"],
            cwd=AXE.parents[2],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return AXE.read_text(encoding="utf-8")


async def serious_violations(page: Page, axe: str) -> list[str]:
    if not await page.eval("typeof axe !== 'undefined'"):
        await page.eval(axe + ";true")
    found = await page.eval(
        "axe.run(document, {resultTypes: ['violations']}).then(r => r.violations"
        ".filter(v => v.impact === 'serious' || v.impact === 'critical')"
        ".map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', ')))"
    )
    return list(found)
