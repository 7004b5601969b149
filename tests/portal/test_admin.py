"""``bcc admin create-user`` through the real command line entry point."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bcc.cli import build_parser
from portal.db import make_engine, session_factory
from portal.models import StaffSession
from portal.services import twofactor, users


def main(argv: list[str]) -> int:
    """``bcc`` without its logging set-up (which would bind structlog to pytest's captured stderr)."""
    args = build_parser(argv).parse_args(argv)
    result: int = __import__(args._module, fromlist=["run"]).run(args)
    return result


def test_create_user_with_generated_and_file_passwords(
    portal_db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "admin",
                "create-user",
                "--username",
                "admin.satu",
                "--role",
                "admin",
                "--generate",
                "--database-url",
                portal_db_url,
            ]
        )
        == 0
    )
    password = capsys.readouterr().out.strip().rsplit(" ", 1)[-1]
    (tmp_path / "pw").write_text("a-long-enough-password\n")
    assert (
        main(
            [
                "admin",
                "create-user",
                "--username",
                "dinkes.1",
                "--role",
                "agency",
                "--agency",
                "dinkes",
                "--password-file",
                str(tmp_path / "pw"),
                "--database-url",
                portal_db_url,
            ]
        )
        == 0
    )
    engine = make_engine(portal_db_url)
    with session_factory(engine)() as db:
        assert users.authenticate(db, "admin.satu", password) is not None
        officer = users.authenticate(db, "dinkes.1", "a-long-enough-password")
        assert officer is not None and officer.agency == "dinkes"
        assert users.authenticate(db, "dinkes.1", "wrong") is None
    engine.dispose()


def test_bad_input_is_reported_field_by_field(
    portal_db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pw").write_text("short\n")
    code = main(
        [
            "admin",
            "create-user",
            "--username",
            "X",
            "--role",
            "agency",
            "--password-file",
            str(tmp_path / "pw"),
            "--database-url",
            portal_db_url,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "username:" in err and "agency:" in err and "password:" in err


def test_bootstrap_creates_two_admins_once(portal_db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "logins.txt"
    assert main(["admin", "bootstrap", "--out", str(out), "--database-url", portal_db_url]) == 0
    assert out.stat().st_mode & 0o777 == 0o600
    logins = dict(line.split(" ", 1) for line in out.read_text().splitlines())
    assert set(logins) == {"admin.satu", "admin.dua"} and logins["admin.satu"] != logins["admin.dua"]
    engine = make_engine(portal_db_url)
    with session_factory(engine)() as db:
        for name, password in logins.items():
            assert users.authenticate(db, name, password) is not None
    engine.dispose()
    # A second run creates nothing and leaves the file alone.
    assert (
        main(["admin", "bootstrap", "--out", str(tmp_path / "again.txt"), "--database-url", portal_db_url])
        == 0
    )
    assert not (tmp_path / "again.txt").exists()


def test_account_commands(portal_db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """list-users, deactivate, reactivate, reset-password and reset-2fa on a real database."""
    db_args = ["--database-url", portal_db_url]
    (tmp_path / "pw").write_text("first-password-123\n")
    create = ["admin", "create-user", "--username", "op.satu", "--role", "operator"]
    assert main([*create, "--password-file", str(tmp_path / "pw"), *db_args]) == 0
    engine = make_engine(portal_db_url)
    with session_factory(engine)() as db:
        user = users.find_user(db, "op.satu")
        twofactor.enrol(db, user, twofactor.new_secret(), 0)
        users.start_session(db, user, datetime.now(UTC), 8)
    capsys.readouterr()
    assert main(["admin", "list-users", *db_args]) == 0
    assert capsys.readouterr().out.split() == ["op.satu", "operator", "-", "active", "2fa", "-"]
    # the address and language of alarm e-mails (docs/alarms.md, "Notifications")
    contact = ["admin", "set-contact", "--username", "op.satu", *db_args]
    assert main([*contact, "--email", "siti@example.id", "--lang", "en"]) == 0
    assert main([*contact, "--email", "not an address"]) == 2
    # the phone of alarm SMS: an Indonesian mobile number, kept as +62...; a landline is refused
    assert main([*contact, "--email", "siti@example.id", "--lang", "en", "--phone", "0812 3456 7890"]) == 0
    assert main([*contact, "--email", "siti@example.id", "--lang", "en", "--phone", "061 4567890"]) == 2
    assert "phone: an Indonesian mobile number" in capsys.readouterr().err
    with session_factory(engine)() as db:
        assert users.find_user(db, "op.satu").phone == "+6281234567890"  # the refused one changed nothing
    capsys.readouterr()
    assert main(["admin", "list-users", *db_args]) == 0
    assert capsys.readouterr().out.split()[-1] == "siti@example.id"
    with session_factory(engine)() as db:
        assert users.find_user(db, "op.satu").lang == "en"

    def sessions() -> int:
        with session_factory(engine)() as db:
            return db.scalar(select(func.count()).select_from(StaffSession)) or 0

    assert sessions() == 1
    assert main(["admin", "deactivate", "--username", "op.satu", *db_args]) == 0
    assert sessions() == 0
    with session_factory(engine)() as db:
        assert users.authenticate(db, "op.satu", "first-password-123") is None
    assert main(["admin", "reactivate", "--username", "op.satu", *db_args]) == 0
    assert main(["admin", "reset-password", "--username", "op.satu", "--generate", *db_args]) == 0
    new_password = capsys.readouterr().out.strip().rsplit(" ", 1)[-1].rstrip(")")
    assert main(["admin", "reset-2fa", "--username", "op.satu", *db_args]) == 0
    with session_factory(engine)() as db:
        again = users.authenticate(db, "op.satu", new_password)
        assert again is not None and again.totp_secret is None
        assert twofactor.recovery_codes_left(db, again) == 0
    capsys.readouterr()
    assert main(["admin", "list-users", *db_args]) == 0
    assert capsys.readouterr().out.split()[-2:] == ["2fa-missing", "siti@example.id"]
    assert main(["admin", "deactivate", "--username", "nobody", *db_args]) == 2
    engine.dispose()
