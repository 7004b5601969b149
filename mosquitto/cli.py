"""``bcc broker passwd|acl|config``: the password file and the ACL for every account, a local config."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bcc_contract.accounts import parse_account_counts
from mosquitto.accounts import ROLES, account_passwords, read_role_secrets, render_acl, write_password_file
from mosquitto.config import DEFAULT_ACL, render_config
from mosquitto.errors import MissingSecretsError

ACCOUNTS_HELP = (
    "ROLE=N: N accounts for a role of which N processes run at once (ROLE_1 .. ROLE_N); "
    "default portal=8, every other role 1. Give the same values to passwd, acl and config."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``passwd``, ``acl`` and ``config`` sub-commands to the ``bcc broker`` parser."""
    sub = parser.add_subparsers(dest="broker_command", required=True)
    pw = sub.add_parser("passwd", help="write the Mosquitto password file (every account) from role secrets")
    pw.add_argument("--out", type=Path, required=True, help="password file to write (mode 0600)")
    pw.add_argument("--secrets-dir", type=Path, help="directory holding mqtt_<role> files")
    acl = sub.add_parser("acl", help="write the ACL: the packaged per-role rules for every account")
    acl.add_argument("--out", type=Path, required=True, help="ACL file to write (mode 0640)")
    cf = sub.add_parser("config", help="render a runtime mosquitto.conf on a loopback port")
    cf.add_argument("--out", type=Path, required=True, help="directory for mosquitto.conf, acl and data/")
    cf.add_argument("--port", type=int, required=True)
    cf.add_argument("--host", default="127.0.0.1")
    cf.add_argument("--password-file", type=Path, help="default: <out>/passwd")
    cf.add_argument("--acl", type=Path, default=None, help="default: the packaged acl rendered into <out>")
    for p in (pw, acl, cf):
        p.add_argument("--accounts", action="append", default=[], metavar="ROLE=N", help=ACCOUNTS_HELP)


def run(args: argparse.Namespace) -> int:
    """Run ``bcc broker <command>``; 2 when secrets are missing or --accounts is wrong."""
    try:
        counts = parse_account_counts(args.accounts)
    except ValueError as err:
        print(f"error: --accounts: {err}", file=sys.stderr)
        return 2
    if args.broker_command == "passwd":
        try:
            users = account_passwords(read_role_secrets(ROLES, secrets_dir=args.secrets_dir), counts)
            write_password_file(args.out, users)
        except MissingSecretsError as err:
            print("error: " + "\n  ".join(("missing MQTT secrets:", *err.problems)), file=sys.stderr)
            return 2
        print(f"wrote {args.out} ({len(users)} accounts: {' '.join(users)})")
        return 0
    if args.broker_command == "acl":
        text = render_acl(DEFAULT_ACL.read_text(encoding="utf-8"), counts)
        tmp = args.out.with_name(f".{args.out.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, args.out)
        print(f"wrote {args.out}")
        return 0
    conf = render_config(
        args.out,
        port=args.port,
        host=args.host,
        acl_path=args.acl,
        password_path=args.password_file or args.out / "passwd",
        accounts=counts,
    )
    print(conf)
    return 0
