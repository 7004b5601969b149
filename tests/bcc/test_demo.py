"""`bcc demo` as a user runs it: the printed client lines and logins work, Ctrl-C stops it, the amqtt
fallback runs the whole room, and nothing it started outlives it (killed, or failing mid-start)."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import signal
import sys
from pathlib import Path

import httpx
import psutil
import pyotp

from mosquitto import ROLES, mqtt_login
from tests.bcc.demo_run import after, mqtt_passwords, start_demo
from tests.support.influx import influxql
from tests.support.mqtt_probe import V311, Probe
from tests.support.paths import ROOT


def _form_field(html: str, pattern: str) -> str:
    found = re.search(pattern, html)
    assert found is not None, pattern
    return found.group(1)


async def _portal_console_as(base: str, username: str, password: str) -> int:
    """Log in through the staff login form, enrol the second factor as a person would (the key shown
    on the page into an authenticator: pyotp here), and open the operator console; its HTTP status."""
    token_re = r'name="csrf_token" value="([^"]+)"'
    async with httpx.AsyncClient(base_url=base, timeout=10) as web:
        form = (await web.get("/staf/masuk")).text
        data = {"csrf_token": _form_field(form, token_re), "username": username, "password": password}
        r = await web.post("/staf/masuk", data=data)
        assert r.status_code == 303 and r.headers["location"].startswith("/staf/2fa"), r.headers
        enrol = (await web.get(r.headers["location"])).text
        secret = _form_field(enrol, r'<code id="totp-secret">([A-Z2-7]+)</code>')
        code = pyotp.TOTP(secret).now()
        r = await web.post("/staf/2fa", data={"csrf_token": _form_field(enrol, token_re), "code": code})
        assert r.status_code in (200, 303), r.text  # enrolled: the recovery codes, then onwards
        return (await web.get("/konsol")).status_code


async def test_demo_prints_working_client_lines_and_stops_on_ctrl_c() -> None:
    proc, lines = await start_demo([], cwd=ROOT, timeout_s=30)
    assert proc.stdout is not None
    try:
        text = "\n".join(lines)
        assert "Mosquitto (project config, generated credentials)" in text
        assert ":1883" not in text  # never the default port: a free one
        assert "InfluxDB:   http://127.0.0.1:" in text  # the recorder joined the demo
        assert after(lines, "alarms").startswith("32 alarms from ")  # the evaluator on the shipped rules
        host, port = re.findall(r"mqtt://([\d.]+):(\d+)", after(lines, "broker"))[0]
        passwords = mqtt_passwords(lines)
        assert sorted(label.split("_")[0] for label in passwords) == sorted(r.split("_")[0] for r in ROLES)
        assert "portal_1..portal_8" in passwords
        # The operator console's own role has a printed login, and it opens the console.
        user, password = after(lines, "operator").split(" / ")
        portal = re.findall(r"http://[\d.:]+", after(lines, "portal"))[0]
        assert await _portal_console_as(portal, user, password) == 200
        watch = after(lines, "Watch everything")
        switch = after(lines, "Switch light circuit 1 on")
        # The printed "watch" line, as is: its first retained message proves the subscription is live.
        sub = await asyncio.create_subprocess_exec(*shlex.split(watch), stdout=asyncio.subprocess.PIPE)
        assert sub.stdout is not None
        try:
            async with asyncio.timeout(15):
                first = (await sub.stdout.readline()).decode()
                assert first.startswith("bcc/")
                # Through a shell, as pasted: it fills in the command's ts ($(date +%s)), without
                # which the gateway would answer "rejected".
                pub = await asyncio.create_subprocess_shell(switch)
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
        # Every MQTT role's printed password logs in (Home Assistant needs its own); a role with several
        # accounts is printed as a range (portal_1..portal_8) and its last account logs in (the demo's one
        # portal worker holds portal_1). Last: the broker ties the client id to the username, so logging
        # in as `gateway` disconnects the demo's gateway (CI once lost the command above to that gap).
        for label, password in passwords.items():
            assert await mqtt_login(host, int(port), label.split("..")[-1], password) == 0, label
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0
    assert "BCC demo stopped." in rest.decode()


async def test_demo_on_the_embedded_broker_runs_the_whole_room(tmp_path: Path) -> None:
    """amqtt (MQTT 3.1.1 only): gateway states arrive, the recorder writes them, exit status 0."""
    proc, lines = await start_demo(["--embedded-broker", "--duration", "8"], cwd=tmp_path, timeout_s=45)
    try:
        assert "embedded amqtt broker (MQTT 3.1.1 only" in after(lines, "broker")
        host, port = re.findall(r"mqtt://([\d.]+):(\d+)", after(lines, "broker"))[0]
        reader = Probe(host, int(port), "readonly", mqtt_passwords(lines)["readonly"], V311)
        try:
            assert (await reader.connect()).value == 0
            await reader.subscribe(["bcc/lights_a"])
            assert await reader.wait(lambda: any(t == "bcc/lights_a" for t, _, _ in reader.messages), 10)
        finally:
            await reader.close()
        influx = re.findall(r"http://[\d.:]+", after(lines, "InfluxDB"))[0]
        deadline = asyncio.get_running_loop().time() + 15
        while not await asyncio.to_thread(influxql, influx, "SHOW SERIES WHERE \"device\" = 'lights_a'"):
            assert asyncio.get_running_loop().time() < deadline, "the recorder wrote no lights_a state"
            await asyncio.sleep(0.2)  # poll interval of the readiness check
        rest, _ = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    assert "BCC demo stopped." in rest.decode()


async def test_children_end_when_the_demo_is_killed(tmp_path: Path) -> None:
    proc, _lines = await start_demo([], cwd=tmp_path, timeout_s=30)
    children = psutil.Process(proc.pid).children(recursive=True)
    names = {c.name() for c in children}
    assert {"mosquitto", "influxd"} <= names, names
    proc.kill()  # SIGKILL: no cleanup code of the demo runs
    await proc.wait()
    _gone, alive = await asyncio.to_thread(psutil.wait_procs, children, 10)
    for survivor in alive:  # do not leave them to the next test
        survivor.kill()
    assert not alive, f"outlived the killed demo: {alive}"


async def test_children_end_when_the_demo_fails_mid_start(tmp_path: Path) -> None:
    """influxd is running when the recorder fails (its spool path is a directory): it must not stay."""
    workdir = tmp_path / "demo"
    (workdir / "recorder-spool.sqlite3").mkdir(parents=True)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bcc", "demo", "--workdir", str(workdir), "--duration", "1",
        cwd=tmp_path, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode != 0
    assert "sqlite3" in err.decode()  # failed where we made it fail
    assert (workdir / "influxdb" / "influxd.log").is_file()  # after influxd had started
    assert (workdir / "mosquitto" / "mosquitto.log").is_file()

    def started_here() -> list[psutil.Process]:
        found = []
        for p in psutil.process_iter(["cmdline"]):
            if any(str(workdir) in arg for arg in p.info["cmdline"] or ()):
                found.append(p)
        return found

    _gone, alive = await asyncio.to_thread(psutil.wait_procs, started_here(), 10)
    for survivor in alive:
        survivor.kill()
    assert not alive, f"outlived the failed demo: {alive}"
