"""A minimal Chrome DevTools Protocol driver for Debian's headless ``chromium`` (no Selenium/Playwright).

Playwright and Selenium Manager download their own browser builds, which these machines cannot fetch;
CDP over a WebSocket drives the distribution's Chromium directly. Only what the browser test needs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import shutil
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect, unix_connect


class Page:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 0
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.loaded = asyncio.Event()
        # CDP events by method (e.g. "Fetch.requestPaused"); a handler must not await: it runs in the reader.
        self.handlers: dict[str, Callable[[dict[str, Any]], None]] = {}
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            msg = json.loads(raw)
            if "id" in msg and msg["id"] in self.pending:
                self.pending.pop(msg["id"]).set_result(msg)
            elif msg.get("method") == "Page.loadEventFired":
                self.loaded.set()
            elif (handler := self.handlers.get(msg.get("method", ""))) is not None:
                handler(msg.get("params", {}))

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = future
        await self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        msg = await asyncio.wait_for(future, 30)
        if "error" in msg:
            raise RuntimeError(f"{method}: {msg['error']}")
        result: dict[str, Any] = msg["result"]
        return result

    async def eval(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def goto(self, url: str) -> None:
        self.loaded.clear()
        await self.send("Page.navigate", url=url)
        await asyncio.wait_for(self.loaded.wait(), 30)

    async def fill(self, selector: str, value: str) -> None:
        await self.eval(f"document.querySelector({json.dumps(selector)}).value = {json.dumps(value)}")

    async def click_and_wait(self, selector: str) -> None:
        self.loaded.clear()
        await self.eval(f"document.querySelector({json.dumps(selector)}).click()")
        await asyncio.wait_for(self.loaded.wait(), 30)

    async def set_files(self, selector: str, files: list[Path]) -> None:
        root = await self.send("DOM.getDocument")
        node = await self.send("DOM.querySelector", nodeId=root["root"]["nodeId"], selector=selector)
        await self.send("DOM.setFileInputFiles", nodeId=node["nodeId"], files=[str(f) for f in files])

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        await asyncio.to_thread(_write, path, base64.b64decode(shot["data"]))

    async def url(self) -> str:
        value: str = await self.eval("location.href")
        return value


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@contextlib.asynccontextmanager
async def chromium_page(
    profile: Path,
    width: int = 390,
    height: int = 844,
    *,
    netns: str | None = None,
    args: Sequence[str] = (),
) -> AsyncIterator[Page]:
    """Headless Chromium with one phone-sized page (CSP bypassed only so the test can inject axe-core).

    ``netns``: the browser runs in that network namespace (``ip netns exec``), so it reaches only what
    that host reaches; the test drives it through a Unix socket (a path, reachable from every
    namespace) that ``socat`` in the namespace joins to the DevTools port. ``args``: more flags.
    """
    binary = shutil.which("chromium")
    if binary is None:
        raise RuntimeError("chromium not installed (Debian package: chromium; scripts/sysdeps.sh test)")
    wrap = ["ip", "netns", "exec", netns] if netns else []
    proc = await asyncio.create_subprocess_exec(
        *wrap,
        binary,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--remote-debugging-port=0",
        "--remote-debugging-address=127.0.0.1",
        f"--user-data-dir={profile}",
        *args,
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    bridge: asyncio.subprocess.Process | None = None
    try:
        assert proc.stderr is not None
        port = None
        while port is None:
            line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
            if not line:
                raise RuntimeError("chromium exited before DevTools was listening")
            if m := re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line):
                port = int(m.group(1))
        uds = None
        if netns:
            uds = profile.parent / f"{profile.name}.devtools"
            bridge = await asyncio.create_subprocess_exec(
                *wrap,
                "socat",
                f"UNIX-LISTEN:{uds},fork",
                f"TCP:127.0.0.1:{port}",
                stdout=asyncio.subprocess.DEVNULL,
            )
            deadline = asyncio.get_running_loop().time() + 10
            while not uds.exists():  # poll for the bridge's socket (not a wait for readiness guess)
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError("socat did not open the DevTools bridge")
                await asyncio.sleep(0.02)
        async with httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=str(uds) if uds else None)
        ) as http:
            targets = (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
        ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        opened = (
            unix_connect(str(uds), ws_url, max_size=64 * 1024 * 1024)
            if uds
            else connect(ws_url, max_size=64 * 1024 * 1024)
        )
        async with opened as ws:
            page = Page(ws)
            await page.send("Page.enable")
            await page.send("Page.setBypassCSP", enabled=True)
            await page.send(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=height,
                deviceScaleFactor=2,
                mobile=True,
            )
            try:
                yield page
            finally:
                page.reader.cancel()
    finally:
        if bridge is not None:
            bridge.terminate()
            await bridge.wait()
        proc.terminate()
        await proc.wait()
