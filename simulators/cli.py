"""Command line of the simulators: ``python -m simulators`` and ``bcc simulate``.

Prints one JSON line with the bound endpoints and the control address, then serves until SIGINT or
SIGTERM. Scripts read that line instead of guessing ports:
``{"buses": {"room_rs485": {"type": "tcp", "host": "127.0.0.1", "port": 40123}}, "control": "http://..."}``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from devices.loader import DEMO_SITE, ConfigError, load_site
from simulators import synthetic
from simulators.control import ControlServer
from simulators.site import SimulatorError, start_site


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulator options to ``parser`` (also used by ``bcc simulate``)."""
    parser.add_argument("--site", type=Path, default=DEMO_SITE, help="site file (default: the demo room)")
    parser.add_argument("--host", default="127.0.0.1", help="address the TCP buses bind (default 127.0.0.1)")
    ports = parser.add_mutually_exclusive_group()
    ports.add_argument(
        "--port", type=int, default=None, help="bind every TCP bus on this port; 0 = free ports"
    )
    ports.add_argument(
        "--port-base", type=int, default=None, help="bind TCP buses on N, N+1, ... in site order"
    )
    parser.add_argument("--no-physics", action="store_true", help="keep served values fixed")
    parser.add_argument("--physics-period", type=float, default=0.5, help="seconds between physics steps")
    parser.add_argument("--seed", type=int, default=None, help="seed of the physics noise")
    parser.add_argument("--control-port", type=int, default=0, help="loopback HTTP control port (0 = free)")
    parser.add_argument(
        "--synthetic", type=int, default=None, metavar="N",
        help="instead of --site: N synthetic devices, each on its own free port (scale runs)",
    )  # fmt: skip
    parser.add_argument("--tags", type=int, default=30, help="registers per synthetic device")
    parser.add_argument(
        "--churn", type=float, default=0.1, help="fraction of synthetic registers changed per s"
    )
    parser.add_argument(
        "--change-every-s", type=float, default=None, metavar="S",
        help="instead of --churn: every read-only register (synthetic or of --site) steps up every S s",
    )  # fmt: skip


async def run(args: argparse.Namespace) -> int:
    """Start the simulators from parsed ``args``; return the process exit code."""
    if args.synthetic is not None:
        loaded = synthetic.loaded_site(args.synthetic, args.tags)
        args.port, args.port_base, args.no_physics = 0, None, True
    else:
        try:
            loaded = load_site(args.site)
        except ConfigError as err:
            for problem in err.problems:
                print(problem, file=sys.stderr)
            return 2
    try:
        sim = await start_site(
            loaded,
            host=args.host,
            physics=not args.no_physics,
            physics_period_s=args.physics_period,
            port=args.port,
            port_base=args.port_base,
            seed=args.seed,
        )
    except (SimulatorError, ValueError) as err:
        print(f"simulators: {err}{': ' + str(err.__cause__) if err.__cause__ else ''}", file=sys.stderr)
        return 1
    control = ControlServer(sim)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        url = await control.start(port=args.control_port)
        print(json.dumps({"buses": sim.endpoints, "control": url}), flush=True)
        # --change-every-s also drives a site file's devices (with --no-physics: every read-only
        # register counts up, tests/deploy/test_wan.py); --churn only the synthetic ones
        if args.change_every_s or (args.synthetic is not None and args.churn > 0):
            churner = asyncio.create_task(
                synthetic.change_all(sim, args.change_every_s)
                if args.change_every_s
                else synthetic.churn(sim, args.churn)
            )
            await stop.wait()
            churner.cancel()
        else:
            await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await control.close()
        await sim.stop()
    return 0
