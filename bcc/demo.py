"""``bcc demo``: the command room on one machine: simulators, a broker, the gateway, recorder, the alarm
evaluator and the portal.

Mosquitto runs with the project's own config and freshly generated credentials (or, when the binary is
missing, an embedded amqtt broker, said so on screen; every client then speaks MQTT 3.1.1, the only
version amqtt serves). Every port is a free one, printed: these machines often already run a broker on
1883. Whatever way the demo ends, what it started ends too: in-process parts through the exit stack,
mosquitto and influxd also by the kernel if this process is killed (bcc_common.children).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shlex
import signal
import tempfile
from pathlib import Path
from typing import Any

from bcc_common.process import cancel_and_wait
from bcc_contract.accounts import DEFAULT_ACCOUNTS, account_names
from bcc_contract.topics import Topics
from devices.loader import DEMO_SITE, ConfigError, load_site, site_from_dict
from iot_gateway.alarms.config import build_alarms_config
from iot_gateway.alarms.rules import rules_path_for
from iot_gateway.alarms.service import AlarmService
from iot_gateway.config import GatewayConfig
from iot_gateway.recorder.demo import start_demo_recorder
from iot_gateway.service import Gateway
from mosquitto import ROLES, EmbeddedBroker, MosquittoProcess, find_mosquitto, generate_demo_secrets
from mosquitto.embedded import PROTOCOL as EMBEDDED_PROTOCOL
from portal.config import PortalMqttSettings as PortalMqtt
from portal.demo import start_demo_portal
from simulators.site import start_site


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site", default=str(DEMO_SITE), help="site file (default: the BCC room)")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--workdir", type=Path, default=None, help="broker files (default: a temp dir)")
    parser.add_argument("--embedded-broker", action="store_true", help="use amqtt even if mosquitto exists")


def command_line(argv: list[str], fields: str) -> str:
    """A shell line that publishes the command ``{<fields>, "ts": <now>}``: ``argv`` quoted as is, the
    send time filled in by the shell when the line runs (``$(date +%s)``; the gateway refuses a command
    without ``ts``), so a copy-paste works at any later time."""
    return shlex.join([*argv, "-m"]) + " '{" + fields + ", \"ts\": '$(date +%s)'}'"


def instructions(host: str, port: int, secrets: dict[str, str], base: str, mqtt5: bool) -> list[str]:
    op = ["-h", host, "-p", str(port), "-u", "operator", "-P", secrets["operator"]]
    ro = ["-h", host, "-p", str(port), "-u", "readonly", "-P", secrets["readonly"]]
    v = ["-V", "mqttv5"] if mqtt5 else []
    topics = Topics(base)
    pub = ["mosquitto_pub", *v, *op, "-t", topics.set("lights_a")]
    wall = ["mosquitto_pub", *v, *op, "-t", topics.set("wall")]
    sub = ["mosquitto_sub", *v, *ro, "-t", topics.everything, "-v"]
    return [
        "Watch everything:           " + shlex.join(sub),
        "Switch light circuit 1 on:  " + command_line(pub, '"relay_1": "ON", "transaction": "demo-1"'),
        "Set the wall to split 4:    " + command_line(wall, '"layout": "split_4"'),
    ]


def mqtt_logins(secrets: dict[str, str]) -> list[str]:
    """Every broker role's login: its account(s) and password. Each process needs its own account."""
    labels = {}
    for role in ROLES:
        names = account_names(role, DEFAULT_ACCOUNTS.get(role, 1))
        labels[role] = names[0] if len(names) == 1 else f"{names[0]}..{names[-1]}"
    width = max(len(label) for label in labels.values())
    return [f"{labels[role]:<{width}}  {secrets[role]}" for role in ROLES]


def grafana_instructions(influx_url: str) -> list[str]:
    """How to point a Grafana at the packaged provisioning files and dashboards."""
    from grafana.files import DASHBOARD_DIR, PROVISIONING_DIR

    return [
        f"Grafana:    point a Grafana >= 10 at {PROVISIONING_DIR} (paths.provisioning) with",
        f"            BCC_INFLUX_URL={influx_url}",
        f"            BCC_GRAFANA_DASHBOARDS={DASHBOARD_DIR} (see docs/grafana.md)",
    ]


async def _start_broker(
    stack: contextlib.AsyncExitStack, workdir: Path, secrets: dict[str, str], embedded: bool
) -> tuple[Any, str, bool]:
    """Mosquitto, or amqtt when asked or when the binary is missing: (broker, description, MQTT 5?)."""
    broker: Any
    if find_mosquitto() and not embedded:
        broker = MosquittoProcess(workdir / "mosquitto", credentials=secrets)
        stack.push_async_callback(broker.stop)
        await broker.start()
        return broker, "Mosquitto (project config, generated credentials)", True
    if not embedded:
        print("NOTE: mosquitto is not installed; using an embedded amqtt broker instead.")
    broker = EmbeddedBroker(credentials=secrets)
    stack.push_async_callback(broker.stop)
    await broker.start(workdir / "amqtt")
    return broker, f"embedded amqtt broker (MQTT {EMBEDDED_PROTOCOL} only, read rights looser)", False


async def _stop_gateway(stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    """Ask the gateway to stop (it publishes ``offline``); cancel it if it has not within 5 s."""
    stop.set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(task), 5)
    await cancel_and_wait(task)


async def _start_alarms(
    stack: contextlib.AsyncExitStack, client_site: Any, password: str, workdir: Path
) -> AlarmService | None:
    """The alarm evaluator on the site's shipped rules (none for a site without a rules file), its state
    in a SQLite file of the demo's work directory."""
    if not rules_path_for(client_site).is_file():
        return None
    config = build_alarms_config(
        client_site, {"BCC_MQTT_PASSWORD": password}, state_path=workdir / "alarms.sqlite3", instance="demo"
    )
    service = AlarmService(config)
    done = asyncio.Event()
    task = asyncio.create_task(service.run(done))

    async def stop() -> None:
        done.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), 5)
        await cancel_and_wait(task)

    stack.push_async_callback(stop)
    await asyncio.wait_for(service.connected.wait(), 10)
    return service


async def demo(args: argparse.Namespace) -> int:
    try:
        loaded = load_site(args.site)
    except ConfigError as err:
        print("\n".join(err.problems))
        return 2
    secrets = generate_demo_secrets(ROLES)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        workdir = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bcc-demo-")))
        broker, kind, mqtt5 = await _start_broker(stack, workdir, secrets, args.embedded_broker)
        protocol = "5" if mqtt5 else EMBEDDED_PROTOCOL
        sim = await start_site(loaded, port=0, physics=True)
        stack.push_async_callback(sim.stop)
        raw = sim.site_for_clients().site.model_dump(mode="json", exclude_none=True)
        raw["mqtt"] = {**raw["mqtt"], "url": broker.url, "username": "gateway", "protocol": protocol}
        if not mqtt5:
            # amqtt 0.12.1 iterates its subscription dict while awaiting, in more places than
            # mosquitto/embedded.py's snapshot of .items() covers: with bulk telemetry's extra QoS 1
            # message per window, a client connecting meanwhile lost its connection ("dictionary changed
            # size during iteration") in about half the runs. The fallback broker keeps per-device topics.
            raw["gateway"].pop("telemetry_batch_ms", None)
            raw["gateway"].pop("telemetry_spool_path", None)
        elif raw["gateway"].get("telemetry_batch_ms") is not None:  # the run's files stay in its workdir
            raw["gateway"]["telemetry_spool_path"] = str(workdir / "gateway-telemetry.sqlite3")
        client_site = site_from_dict(raw, loaded.profiles)
        cfg = GatewayConfig(loaded=client_site, mqtt=client_site.site.mqtt, password=secrets["gateway"])
        gateway = Gateway(cfg)
        gw_task = asyncio.create_task(gateway.run(stop))
        stack.push_async_callback(_stop_gateway, stop, gw_task)  # after a clean stop: a no-op
        await asyncio.wait_for(gateway.link.connected.wait(), 10)
        alarms = await _start_alarms(stack, client_site, secrets["alarms"], workdir)
        recorder = await start_demo_recorder(client_site, cfg.mqtt, secrets["recorder"], workdir)
        if recorder is not None:
            stack.push_async_callback(recorder.stop)
        portal = await start_demo_portal(
            workdir / "portal",
            mqtt=PortalMqtt(
                host=broker.host, port=broker.port, password=secrets["portal"], protocol=protocol
            ),
        )
        stack.push_async_callback(portal.stop)
        base = cfg.mqtt.base_topic
        print(f"BCC demo: site {loaded.site.site} with {len(loaded.site.devices)} devices")
        print(f"  broker:     {kind} at {broker.url}")
        for bus, ep in sim.endpoints.items():
            where = f"{ep.get('host')}:{ep.get('port')}" if ep.get("type") == "tcp" else ep.get("port")
            print(f"  simulator:  bus {bus} at {where}")
        print(f"  gateway:    running, state under {Topics(base).state('<device>')}")
        if alarms is not None:
            rules = alarms.config.rules
            print(
                f"  alarms:     {len(rules.alarms)} alarms from {rules.path} "
                f"(docs/alarms.md), states under {Topics(base).alarm_state('<alarm>')}, on the console"
            )
        else:
            print(f"  alarms:     not started: no rules file for site {loaded.site.site} (docs/alarms.md)")
        if recorder is not None:
            for line in [*recorder.instructions(), *grafana_instructions(recorder.influxd.url)]:
                print("  " + line)
        else:
            print("  recorder:   not started: influxd is not installed (apt-get install influxdb)")
        print(f"  portal:     {portal.url}  (citizen pages; staff login at {portal.url}/staf/masuk,")
        print(f"              operator console at {portal.url}/konsol; admins and the operator enrol")
        print("              an authenticator app (TOTP) at their first login, as in production)")
        for label, (user, password) in portal.logins.items():
            print(f"              {label}: {user} / {password}")
        print("  MQTT users: one account per process (client id = username), passwords made for this run:")
        for line in mqtt_logins(secrets):
            print("              " + line)
        for line in instructions(broker.host, broker.port, secrets, base, mqtt5):
            print("  " + line)
        print("Press Ctrl-C to stop.", flush=True)
        if args.duration is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.duration)
            stop.set()
        await gw_task
    print("BCC demo stopped.")
    return 0


def run(args: argparse.Namespace) -> int:
    return asyncio.run(demo(args))
