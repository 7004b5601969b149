"""`bcc demo` as a user runs it: the printed mosquitto_pub line switches a light, Ctrl-C stops it."""

from __future__ import annotations

import asyncio
import json
import shlex
import signal
import sys

from tests.support.paths import ROOT


async def test_demo_prints_working_client_lines_and_stops_on_ctrl_c() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bcc", "--log-format", "json", "demo",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(30):
            while not lines or not lines[-1].startswith("Press Ctrl-C"):
                lines.append((await proc.stdout.readline()).decode().strip())
        text = "\n".join(lines)
        assert "Mosquitto (project config, generated credentials)" in text
        assert ":1883" not in text  # never the default port: a free one
        assert "InfluxDB:   http://127.0.0.1:" in text  # the recorder joined the demo
        watch = next(ln for ln in lines if ln.startswith("Watch everything:")).split(":", 1)[1].strip()
        switch = (
            next(ln for ln in lines if ln.startswith("Switch light circuit 1 on:")).split(":", 1)[1].strip()
        )
        # The printed "watch" line, as is: its first retained message proves the subscription is live.
        sub = await asyncio.create_subprocess_exec(*shlex.split(watch), stdout=asyncio.subprocess.PIPE)
        assert sub.stdout is not None
        try:
            async with asyncio.timeout(15):
                first = (await sub.stdout.readline()).decode()
                assert first.startswith("bcc/")
                pub = await asyncio.create_subprocess_exec(*shlex.split(switch))
                assert await pub.wait() == 0
                while True:
                    topic, payload = (await sub.stdout.readline()).decode().strip().split(" ", 1)
                    if topic == "bcc/lights_a/response":
                        break
        finally:
            sub.terminate()
            await sub.wait()
        resp = json.loads(payload)
        assert resp["status"] == "ok" and resp["transaction"] == "demo-1"
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0
    assert "BCC demo stopped." in rest.decode()
