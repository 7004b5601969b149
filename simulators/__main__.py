"""``python -m simulators --site FILE [--port 0 | --port-base N] [--no-physics]``: run a site's devices."""

from __future__ import annotations

import argparse
import asyncio
import sys

from simulators.cli import add_arguments, run


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m simulators", description="Simulate a site's Modbus devices."
    )
    add_arguments(parser)
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
