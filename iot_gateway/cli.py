"""``bcc gateway``: run the MQTT<->Modbus gateway for a site, or check its configuration offline."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import signal
import sys
from pathlib import Path

import structlog

from bcc_common.sdnotify import ready_when, stopping
from bcc_contract.fleet import FleetConflict
from devices.loader import DEMO_SITE, PROFILE_DIR, ConfigError
from iot_gateway.bulk import SpoolError
from iot_gateway.config import GatewayConfig, load_gateway_config
from iot_gateway.failover import LeaseLost
from iot_gateway.service import Gateway

log = structlog.get_logger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site", default=str(DEMO_SITE), help="site YAML file (default: the demo room)")
    parser.add_argument(
        "--profiles", action="append", default=[], metavar="DIR",
        help="extra folder of device profiles (repeatable); the shipped ones are always loaded",
    )  # fmt: skip
    parser.add_argument(
        "--check-config", action="store_true", help="validate the site and secrets, print every problem, exit"
    )
    parser.add_argument(
        "--instance", default=None, metavar="NAME",
        help="this process's name in the lease of an active/standby gateway (gateway.lease_s; "
        "default: host-pid); each process also needs its own broker account (BCC_MQTT_USERNAME)",
    )  # fmt: skip
    parser.add_argument(
        "--telemetry-spool", type=Path, default=None, metavar="FILE",
        help="file of bulk telemetry states waiting for the broker (default: gateway.telemetry_spool_path; "
        "ignored when the site has no gateway.telemetry_batch_ms)",
    )  # fmt: skip


def check(site: str, extra: list[str]) -> int:
    try:
        cfg = load_gateway_config(site, profile_dirs=profile_dirs(extra))
    except ConfigError as err:
        print(f"configuration invalid ({len(err.problems)} problems):", file=sys.stderr)
        for problem in err.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    print(f"configuration ok: {len(cfg.loaded.site.devices)} devices on {len(cfg.loaded.site.buses)} buses")
    return 0


def load(site: str, extra: list[str], spool: Path | None) -> GatewayConfig:
    """The site's configuration, with ``--telemetry-spool`` in place of ``gateway.telemetry_spool_path``
    when the site has bulk telemetry (the systemd unit passes its StateDirectory: deploy/systemd/)."""
    cfg = load_gateway_config(site, profile_dirs=profile_dirs(extra))
    gateway = cfg.loaded.site.gateway
    if spool is None or gateway.telemetry_batch_ms is None:
        return cfg
    gateway = gateway.model_copy(update={"telemetry_spool_path": str(spool)})
    loaded = dataclasses.replace(cfg.loaded, site=cfg.loaded.site.model_copy(update={"gateway": gateway}))
    return dataclasses.replace(cfg, loaded=loaded)


async def serve(site: str, extra: list[str], spool: Path | None = None, instance: str | None = None) -> int:
    try:
        cfg = load(site, extra, spool)
    except ConfigError:
        return check(site, extra)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping, stop)
    try:
        gateway = Gateway(cfg, instance=instance)
    except SpoolError as err:
        print(f"gateway: {err}", file=sys.stderr)
        return 2
    reloads: set[asyncio.Task[None]] = set()

    def on_hup() -> None:
        task = loop.create_task(reload(gateway, site, extra, spool))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_hup)
    loop.add_signal_handler(signal.SIGUSR1, dump_tasks)
    # systemd (Type=notify, deploy/systemd/): started means connected to the broker
    ready = loop.create_task(ready_when(gateway.link.connected, "connected to the MQTT broker"))
    try:
        await gateway.run(stop)
    except FleetConflict as err:  # another live gateway owns some of our devices: nothing was polled
        log.error("fleet_conflict", gateway=err.gateway, claims=err.claims)
        print(f"gateway: {err}", file=sys.stderr)
        return 2
    except LeaseLost as err:  # another process of this gateway is active: restart as a standby
        print(f"gateway: {err}", file=sys.stderr)
        return 3
    finally:
        ready.cancel()
    return 0


def profile_dirs(extra: list[str]) -> list[Path]:
    return [PROFILE_DIR, *(Path(d) for d in extra)]


def dump_tasks() -> None:
    """SIGUSR1: print every task's stack to stderr (diagnosing a stuck shutdown or poll loop)."""
    for task in asyncio.all_tasks():
        print(f"--- task {task.get_name()}", file=sys.stderr)
        task.print_stack(file=sys.stderr)


async def reload(gateway: Gateway, site: str, extra: list[str], spool: Path | None = None) -> None:
    """SIGHUP: re-read the site; a broken file is reported and the running configuration kept."""
    try:
        new = load(site, extra, spool)
    except ConfigError as err:
        log.error("reload_refused", problems=err.problems)
        return
    await gateway.reload(new)


def run(args: argparse.Namespace) -> int:
    if args.check_config:
        return check(args.site, args.profiles)
    return asyncio.run(serve(args.site, args.profiles, args.telemetry_spool, args.instance))
