"""``bcc bench``: benchmarks that print our figure next to the raw ceiling measured in the same run.

The benchmarks live outside the installed packages (they are test equipment); ``bcc bench`` finds them
in the source checkout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

CHANGE_HELP = "every read-only register changes past the deadband every S s (default: 10 %% per s)"
BULK_HELP = "gateway.telemetry_batch_ms (default 0: no bulk telemetry)"
PY_SPY_HELP = "record the gateway with py-spy (dev extra) during the window: collapsed stacks to FILE"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench", required=True)
    cmd = sub.add_parser("command", help="command round trip vs. raw MQTT + Modbus floor")
    cmd.add_argument("--count", type=int, default=300, help="commands to time (default 300)")
    cmd.add_argument("--json", action="store_true", help="print one JSON object only")
    poll = sub.add_parser("poll", help="one gateway polling N synthetic devices vs. plain pymodbus ceiling")
    poll.add_argument("--devices", type=int, default=500, help="Modbus TCP devices (default 500)")
    poll.add_argument("--tags", type=int, default=30, help="registers per device (default 30)")
    poll.add_argument("--interval", type=float, default=1.0, help="poll interval in s (default 1)")
    poll.add_argument("--seconds", type=float, default=30.0, help="measurement window (default 30)")
    poll.add_argument("--commands", type=int, default=200, help="commands timed, spread over the window")
    poll.add_argument("--change-every-s", type=float, default=None, metavar="S", help=CHANGE_HELP)
    poll.add_argument("--bulk-ms", type=int, default=0, help=BULK_HELP)
    poll.add_argument("--py-spy", type=Path, default=None, metavar="FILE", help=PY_SPY_HELP)
    poll.add_argument("--json", action="store_true", help="print one JSON object only")
    por = sub.add_parser("portal", help="report submissions and the staff queue vs. a trivial endpoint")
    por.add_argument("--reports", type=int, default=100_000, help="reports in the database (default 100,000)")
    por.add_argument("--submissions", type=int, default=400, help="submissions to time (default 400)")
    por.add_argument("--database-url", default="", help="default: a temporary SQLite file")
    por.add_argument("--seconds", type=int, default=6, help="wrk duration per endpoint and round (default 6)")
    por.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds of both loads; medians reported (default 3)"
    )
    por.add_argument(
        "--workers", type=int, default=1, help="uvicorn workers of both servers (more than 1: use PostgreSQL)"
    )
    por.add_argument("--json", action="store_true", help="print one JSON object only")
    con = sub.add_parser("console", help="simulator change -> operator console (SSE) vs. gateway publish")
    con.add_argument("--count", type=int, default=200, help="value changes to time (default 200)")
    con.add_argument("--poll-s", type=float, default=0.1, help="poll interval of the sensor (default 0.1)")
    con.add_argument("--json", action="store_true", help="print one JSON object only")
    rec = sub.add_parser("recorder", help="MQTT -> recorder -> InfluxDB values/s vs. raw /write ceiling")
    rec.add_argument("--devices", type=int, default=100, help="devices of 30 registers (default 100)")
    rec.add_argument("--messages", type=int, default=40_000, help="device states (default 40,000)")
    rec.add_argument(
        "--rate", type=float, default=50_000.0, help="publish limit, device states/s (default 50,000)"
    )
    rec.add_argument(
        "--bulk",
        type=int,
        default=100,
        help="states per MQTT message on bcc/bridge/telemetry (gateway.telemetry_batch_ms); default 100: "
        "the shipped sites' 100 ms window at 1,000 states/s; 0: one message per state on its device topic",
    )
    rec.add_argument("--json", action="store_true", help="print one JSON object only")
    ala = sub.add_parser("alarms", help="state message -> alarm event latency and the evaluator's CPU")
    ala.add_argument("--devices", type=int, default=500, help="devices (default 500)")
    ala.add_argument(
        "--points", type=int, default=30, help="points per device, each with a rule (default 30)"
    )
    ala.add_argument("--interval", type=float, default=1.0, help="each device's state every N s (default 1)")
    ala.add_argument("--seconds", type=float, default=30.0, help="measurement window (default 30)")
    ala.add_argument("--trips", type=int, default=5, help="devices crossing a limit per interval (default 5)")
    ala.add_argument(
        "--bulk-ms",
        type=int,
        default=100,
        help="the gateway's bulk telemetry window (gateway.telemetry_batch_ms), which the evaluator reads; "
        "default 100 as in the shipped sites; 0: one message per state on its device topic",
    )
    ala.add_argument("--json", action="store_true", help="print one JSON object only")


def run(args: argparse.Namespace) -> int:
    if args.bench == "command":
        from bench.command import bench_command

        result = asyncio.run(bench_command(args.count))
    elif args.bench == "poll":
        from bench.poll import bench_poll

        result = asyncio.run(
            bench_poll(
                args.devices,
                args.tags,
                args.interval,
                args.seconds,
                args.commands,
                change_every_s=args.change_every_s,
                bulk_ms=args.bulk_ms,
                py_spy=args.py_spy,
            )
        )
    elif args.bench == "portal":
        from bench.portal import run_bench

        result = asyncio.run(
            run_bench(
                args.reports,
                args.submissions,
                db_url=args.database_url,
                seconds=args.seconds,
                workers=args.workers,
                rounds=args.rounds,
            )
        )
    elif args.bench == "console":
        from bench.console import bench_console

        result = asyncio.run(bench_console(args.count, args.poll_s))
    elif args.bench == "recorder":
        from bench.recorder import bench_recorder

        result = asyncio.run(bench_recorder(args.devices, args.messages, args.rate, bulk=args.bulk))
    elif args.bench == "alarms":
        from bench.alarms import bench_alarms

        result = asyncio.run(
            bench_alarms(args.devices, args.points, args.interval, args.seconds, args.trips, args.bulk_ms)
        )
    else:  # pragma: no cover - argparse restricts choices
        return 2
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:28} {value}")
    return 0
