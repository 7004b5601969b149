"""``bcc admin``: bootstrap (the site starts with two admins), create-user, list-users, deactivate,
reactivate, reset-password and reset-2fa.

A password comes from ``--password-file``, from a prompt, or is generated with ``--generate`` and
printed once; it is never taken from the command line, where other users could read it.
"""

from __future__ import annotations

import argparse
import getpass
import os
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from portal.config import DEFAULT_DB_URL
from portal.db import UnknownRevision, make_engine, session_factory, upgrade
from portal.errors import InvalidInput
from portal.models import ROLES, User
from portal.reference import load_reference
from portal.services import twofactor, users


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="admin_command", required=True)
    p = sub.add_parser(
        "create-user", help="create a staff account (admin, agency, kepala_dinas, operator, viewer)"
    )
    p.add_argument("--username", required=True)
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument(
        "--agency",
        default=None,
        help="agency key, for --role agency or kepala_dinas (one active head per agency; see "
        "bcc_contract/data/categories.yaml)",
    )
    p.add_argument("--display-name", default="")
    p.add_argument(
        "--database-url",
        default=os.environ.get("BCC_PORTAL_DATABASE_URL", DEFAULT_DB_URL),
        help="default: $BCC_PORTAL_DATABASE_URL or " + DEFAULT_DB_URL,
    )
    boot = sub.add_parser(
        "bootstrap", help="first start: create the two admins with generated passwords (written to --out)"
    )
    boot.add_argument("--out", type=Path, required=True, help="file for the logins (created with mode 0600)")
    boot.add_argument("--database-url", default=os.environ.get("BCC_PORTAL_DATABASE_URL", DEFAULT_DB_URL))
    source = p.add_mutually_exclusive_group()
    source.add_argument("--password-file", type=Path, help="read the password from this file (first line)")
    source.add_argument("--generate", action="store_true", help="generate a password and print it once")

    listing = sub.add_parser("list-users", help="list the staff accounts (role, active, second factor)")
    _database_arg(listing)
    for name, text in (
        ("deactivate", "deactivate an account: it can no longer log in and its sessions end"),
        ("reactivate", "reactivate a deactivated account"),
        ("reset-password", "set a new password for an account (its sessions end)"),
        ("reset-2fa", "remove an account's second factor: it enrols a new one at its next login"),
    ):
        one = sub.add_parser(name, help=text)
        one.add_argument("--username", required=True)
        _database_arg(one)
        if name == "reset-password":
            given = one.add_mutually_exclusive_group()
            given.add_argument("--password-file", type=Path, help="read the password from this file")
            given.add_argument("--generate", action="store_true", help="generate a password, print it once")

    contact = sub.add_parser(
        "set-contact", help="set an account's e-mail, phone and language for alarm and agency messages"
    )
    contact.add_argument("--username", required=True)
    contact.add_argument("--email", required=True, help="address for alarm e-mails ('' stops them)")
    contact.add_argument("--lang", choices=users.NOTIFY_LANGS, default="id", help="id (default) or en")
    contact.add_argument(
        "--phone", default=None, help="Indonesian mobile number for alarm SMS ('' removes it; unset: kept)"
    )
    _database_arg(contact)


def _database_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", default=os.environ.get("BCC_PORTAL_DATABASE_URL", DEFAULT_DB_URL))


def _password(args: argparse.Namespace) -> str:
    if args.password_file:
        return str(args.password_file.read_text(encoding="utf-8").splitlines()[0])
    if args.generate:
        return secrets.token_urlsafe(15)
    if not sys.stdin.isatty():
        raise SystemExit("no terminal for a password prompt: use --password-file or --generate")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat: "):
        raise SystemExit("passwords differ")
    return first


BOOTSTRAP_ADMINS = (("admin.satu", "Admin 1"), ("admin.dua", "Admin 2"))


def bootstrap(database_url: str, out: Path) -> int:
    """Create the site's two admins once; their generated passwords go to ``out`` only (0600)."""
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        with session_factory(engine)() as db:
            existing = db.scalar(select(func.count()).select_from(User).where(User.role == "admin")) or 0
            if existing:
                print(f"the portal already has {existing} admin(s): nothing created")
                return 0
            if out.exists():
                print(f"{out} exists: refusing to overwrite it", file=sys.stderr)
                return 2
            logins = {name: secrets.token_urlsafe(15) for name, _ in BOOTSTRAP_ADMINS}
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.writelines(f"{name} {password}\n" for name, password in logins.items())
            ref, now = load_reference(), datetime.now(UTC)
            for name, display in BOOTSTRAP_ADMINS:
                users.create_user(db, ref, name, "admin", logins[name], now, display_name=display)
    finally:
        engine.dispose()
    where = f"their passwords are in {out} (mode 0600): hand them over, then delete the file"
    print(f"created admins {', '.join(logins)}; {where}")
    return 0


def manage(args: argparse.Namespace) -> int:
    """The account commands other than create-user and bootstrap."""
    command = args.admin_command
    password = _password(args) if command == "reset-password" else ""
    engine = make_engine(args.database_url)
    try:
        upgrade(engine)
        with session_factory(engine)() as db:
            if command == "list-users":
                for u in users.list_users(db):
                    second = "2fa" if u.totp_secret else ("2fa-missing" if twofactor.required(u) else "-")
                    state = "active" if u.active else "deactivated"
                    print(f"{u.username}\t{u.role}\t{u.agency or '-'}\t{state}\t{second}\t{u.email or '-'}")
                return 0
            user = users.find_user(db, args.username)
            now = datetime.now(UTC)
            if command in ("deactivate", "reactivate"):
                users.set_active(db, user, command == "reactivate")
            elif command == "reset-password":
                users.reset_password(db, user, password, now)
            elif command == "set-contact":
                users.set_contact(db, user, args.email, args.lang, args.phone)
            else:
                twofactor.reset(db, user)
                users.end_user_sessions(db, user)
    except InvalidInput as err:
        for field, problem in err.errors.items():
            print(f"{field}: {problem}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    shown = f" (new password: {password})" if command == "reset-password" and args.generate else ""
    print(f"{command}: {args.username}{shown}")
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except UnknownRevision as err:  # a database a newer release migrated: one line, no traceback
        print(f"bcc admin: {err}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.admin_command == "bootstrap":
        return bootstrap(args.database_url, args.out)
    if args.admin_command != "create-user":
        return manage(args)
    password = _password(args)
    engine = make_engine(args.database_url)
    try:
        upgrade(engine)
        with session_factory(engine)() as db:
            users.create_user(
                db,
                load_reference(),
                args.username,
                args.role,
                password,
                datetime.now(UTC),
                agency=args.agency,
                display_name=args.display_name,
            )
    except InvalidInput as err:
        for field, problem in err.errors.items():
            print(f"{field}: {problem}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(f"created {args.role} {args.username}" + (f" with password {password}" if args.generate else ""))
    return 0
