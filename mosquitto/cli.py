"""``bcc broker passwd|config``: the password file from role secrets, a runtime config for local runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mosquitto.accounts import ROLES, read_role_secrets, write_password_file
from mosquitto.config import render_config
from mosquitto.errors import MissingSecretsError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``passwd`` and ``config`` sub-commands to the ``bcc broker`` parser."""
    sub = parser.add_subparsers(dest="broker_command", required=True)
    pw = sub.add_parser("passwd", help="write the Mosquitto password file from role secrets")
    pw.add_argument("--out", type=Path, required=True, help="password file to write (mode 0600)")
    pw.add_argument("--secrets-dir", type=Path, help="directory holding mqtt_<role> files")
    cf = sub.add_parser("config", help="render a runtime mosquitto.conf on a loopback port")
    cf.add_argument("--out", type=Path, required=True, help="directory for mosquitto.conf, acl and data/")
    cf.add_argument("--port", type=int, required=True)
    cf.add_argument("--host", default="127.0.0.1")
    cf.add_argument("--password-file", type=Path, help="default: <out>/passwd")
    cf.add_argument("--acl", type=Path, default=None, help="default: a copy of the packaged acl in <out>")


def run(args: argparse.Namespace) -> int:
    """Run ``bcc broker <command>``; 2 when secrets are missing."""
    if args.broker_command == "passwd":
        try:
            users = read_role_secrets(ROLES, secrets_dir=args.secrets_dir)
            write_password_file(args.out, users)
        except MissingSecretsError as err:
            print("error: " + "\n  ".join(("missing MQTT secrets:", *err.problems)), file=sys.stderr)
            return 2
        print(f"wrote {args.out} ({len(users)} users)")
        return 0
    conf = render_config(
        args.out,
        port=args.port,
        host=args.host,
        acl_path=args.acl,
        password_path=args.password_file or args.out / "passwd",
    )
    print(conf)
    return 0
