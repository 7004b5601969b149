"""``bcc install`` into a temporary root: every file with its mode, the rendered configs accepted by the
real programs (nginx -t, Mosquitto serving TLS with the written passwords, systemd-analyze verify),
a second run that changes nothing, and each refusal leaving the root empty."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import pwd
import re
import secrets
import shutil
import ssl
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
import yaml

from bcc.cli import build_parser
from bcc.install import ensure_venv, run
from bcc.install_settings import SECRET_NAMES, SERVICES, SettingsFileError, load_settings
from bcc_common.children import die_with_parent
from bcc_common.net import free_port
from bcc_common.process import stop_process
from devices.loader import load_site
from iot_gateway.recorder.influxd import InfluxdProcess
from mosquitto.accounts import password_file_matches, write_password_file
from mosquitto.config import PRODUCTION_CONF
from mosquitto.process import find_mosquitto, mqtt_login
from portal.config import Settings
from tests.deploy.test_systemd import verify
from tests.support.influx import influx_as
from tests.support.nginx import nginx_test
from tests.support.paths import ROOT
from tests.support.portal import ADMIN_DSN, new_postgres_database
from tests.support.units import INSTALLED_BCC, VENV_BCC, environment_file, parse_unit
from tests.support.wait import eventually

HOST = "portal.binjai.test"
MQTT_HOST = "mqtt.binjai.test"
VENV = str(Path(VENV_BCC).parents[1])


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def certificate(folder: Path, name: str, host: str, ca: tuple[Path, Path] | None = None) -> tuple[Path, Path]:
    """A key and certificate for ``host`` (and 127.0.0.1), self-signed or signed by ``ca``."""
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    san = f"subjectAltName=DNS:{host},IP:127.0.0.1"
    if ca is None:
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", str(key),
                "-out", str(cert), "-subj", f"/CN={host}", "-addext", san)  # fmt: skip
        return cert, key
    csr, ext = folder / f"{name}.csr", folder / f"{name}.ext"
    ext.write_text(san + "\n")
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={host}"
    )
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
            "-days", "2", "-out", str(cert), "-extfile", str(ext))  # fmt: skip
    return cert, key


def expired_certificate(folder: Path, name: str, host: str) -> None:
    """A self-signed certificate for ``host`` (and 127.0.0.1) valid only on 1 January 2020 (``openssl
    req -x509`` refuses a negative -days; ``openssl ca`` takes the dates)."""
    ca = folder / f"{name}-ca"
    ca.mkdir()
    (ca / "index.txt").touch()
    (ca / "serial").write_text("01\n")
    (ca / "ca.cnf").write_text(
        f"[ca]\ndefault_ca = t\n[t]\ndatabase = {ca}/index.txt\nnew_certs_dir = {ca}\nserial = {ca}/serial\n"
        "default_md = sha256\npolicy = p\ncopy_extensions = copy\n[p]\ncommonName = supplied\n"
    )
    key, csr = folder / f"{name}.key", ca / f"{name}.csr"
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
            "-subj", f"/CN={host}", "-addext", f"subjectAltName=DNS:{host},IP:127.0.0.1")  # fmt: skip
    openssl("ca", "-batch", "-config", str(ca / "ca.cnf"), "-selfsign", "-keyfile", str(key),
            "-in", str(csr), "-startdate", "20200101000000Z", "-enddate", "20200102000000Z",
            "-out", str(folder / f"{name}.crt"))  # fmt: skip


@dataclass
class Kit:
    """What an admin brings: certificates, a site file, a database, the settings file."""

    folder: Path
    settings: dict[str, Any]

    @property
    def path(self) -> Path:
        return self.folder / "settings.yaml"

    def write(self) -> Path:
        self.path.write_text(yaml.safe_dump(self.settings), encoding="utf-8")
        return self.path


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A database and a login role with a strong password, as the admin makes them for the portal."""
    role, password = "bcc_install_" + secrets.token_hex(4), secrets.token_urlsafe(24)
    with new_postgres_database("bcc_install_") as url, psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        try:
            parts = urlsplit(url)
            yield f"postgresql://{role}:{password}@{parts.hostname}:{parts.port or 5432}{parts.path}"
        finally:
            admin.execute(f"DROP ROLE {role}")


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tls")
    certificate(folder, "portal", HOST)
    ca = certificate(folder, "ca", "ca.binjai.test")
    certificate(folder, "mqtt", MQTT_HOST, ca)
    certificate(folder, "other", "other.binjai.test")
    expired_certificate(folder, "expired", HOST)
    return folder


@pytest.fixture
def kit(tmp_path: Path, tls: Path, database: str) -> Kit:
    folder = tmp_path / "admin"
    shutil.copytree(tls, folder / "tls")
    site = (ROOT / "devices" / "sites" / "bcc_room.yaml").read_text(encoding="utf-8")
    (folder / "sites").mkdir()
    (folder / "sites" / "room.yaml").write_text(site + "influxdb: {auth: basic, username: bcc_recorder}\n")
    settings = {
        "host": HOST,
        "tls": {
            "portal": {"cert": "tls/portal.crt", "key": "tls/portal.key"},
            "broker": {"host": MQTT_HOST, "ca": "tls/ca.crt", "cert": "tls/mqtt.crt", "key": "tls/mqtt.key"},
        },
        "sites": {"room": "sites/room.yaml"},
        "portal": {"database_url": database, "workers": 3, "site": "room"},
    }
    return Kit(folder, settings)


def install(kit: Kit, root: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    """``bcc install`` through the real parser, in this process (not ``bcc.cli.main``: it would point the
    process's logging at this test's captured output, which later tests' threads then write to)."""
    argv = [
        "install",
        "--settings",
        str(kit.write()),
        "--root",
        str(root),
        "--no-venv",
        "--venv",
        VENV,
        *extra,
    ]
    code = run(build_parser(argv).parse_args(argv))
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every path under root: mtime, mode and checksum (links: their target)."""
    seen = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if path.is_symlink():
            digest = os.readlink(path)
        elif path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            digest = "dir"
        seen[str(path.relative_to(root))] = (st.st_mtime_ns, st.st_mode, digest)
    return seen


EXPECTED = {
    *(f"etc/bcc/secrets/{name}" for name in SECRET_NAMES),
    "etc/bcc/sites/room.yaml",
    "etc/bcc/portal.env",
    "etc/bcc/tls/portal.crt",
    "etc/bcc/tls/portal.key",
    "etc/bcc/install-manifest.json",
    "etc/systemd/system/bcc-gateway@.service",
    "etc/systemd/system/bcc-influx-provision@.service",
    "etc/systemd/system/bcc-recorder@.service",
    "etc/systemd/system/bcc-portal.service",
    "etc/nginx/sites-available/bcc-portal.conf",
    "etc/nginx/sites-enabled/bcc-portal.conf",
    "etc/mosquitto/mosquitto.conf",
    "etc/mosquitto/bcc/acl",
    "etc/mosquitto/bcc/passwd",
    "etc/mosquitto/bcc/tls/ca.crt",
    "etc/mosquitto/bcc/tls/server.crt",
    "etc/mosquitto/bcc/tls/server.key",
}
PRIVATE = {f"etc/bcc/secrets/{n}" for n in SECRET_NAMES} | {
    "etc/bcc/portal.env",
    "etc/bcc/tls/portal.key",
    "etc/bcc/install-manifest.json",
    "etc/mosquitto/bcc/passwd",
}


@pytest.fixture
def installed(kit: Kit, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    root = tmp_path / "root"
    code, out, err = install(kit, root, capsys)
    assert code == 0, err
    assert "systemctl not run (--root given)" in out
    return root


def test_full_install_writes_every_file_with_its_mode(installed: Path) -> None:
    files = {str(p.relative_to(installed)) for p in installed.rglob("*") if p.is_file() or p.is_symlink()}
    assert files == EXPECTED
    for name in files - {"etc/nginx/sites-enabled/bcc-portal.conf"}:
        mode = stat.S_IMODE((installed / name).stat().st_mode)
        if name in PRIVATE:
            assert mode == 0o600, name
        else:
            assert mode & 0o077 in (0o044, 0o040), (name, oct(mode))  # readable, never writable, by others
    assert stat.S_IMODE((installed / "etc/bcc/secrets").stat().st_mode) == 0o700
    secrets_ = [(installed / "etc/bcc/secrets" / n).read_text().strip() for n in SECRET_NAMES]
    assert len(set(secrets_)) == len(secrets_) and all(len(s) >= 32 for s in secrets_)
    assert os.readlink(installed / "etc/nginx/sites-enabled/bcc-portal.conf") == (
        "/etc/nginx/sites-available/bcc-portal.conf"
    )
    if os.geteuid() == 0:
        mosquitto = pwd.getpwnam("mosquitto")
        passwd = (installed / "etc/mosquitto/bcc/passwd").stat()
        assert (passwd.st_uid, passwd.st_gid) == (mosquitto.pw_uid, mosquitto.pw_gid)
        key = (installed / "etc/mosquitto/bcc/tls/server.key").stat()
        assert (key.st_uid, key.st_gid, stat.S_IMODE(key.st_mode)) == (0, mosquitto.pw_gid, 0o640)


def test_units_are_the_shipped_ones_after_path_substitution(installed: Path) -> None:
    for shipped in sorted((ROOT / "deploy" / "systemd").glob("*.service")):
        text = shipped.read_text(encoding="utf-8").replace(INSTALLED_BCC, VENV_BCC)
        if shipped.name == "bcc-portal.service":
            text = text.replace("--workers 4 ", "--workers 3 ")
        assert (installed / "etc/systemd/system" / shipped.name).read_text(encoding="utf-8") == text


def test_units_pass_systemd_analyze_verify(installed: Path, tmp_path: Path) -> None:
    folder = tmp_path / "verify"
    folder.mkdir()
    names = []
    for path in sorted((installed / "etc/systemd/system").glob("*.service")):
        name = path.name.replace("@.", "@room.")
        shutil.copy(path, folder / name)
        names.append(name)
    result = verify(folder, names)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_portal_env_and_unit_give_the_portal_valid_settings(installed: Path, kit: Kit) -> None:
    unit = parse_unit(installed / "etc/systemd/system/bcc-portal.service")
    creds = installed / "etc/bcc/secrets"
    env = {
        **unit.environment(credentials=str(creds)),
        "BCC_PORTAL_SECRET_KEY_FILE": str(creds / "portal-secret-key"),
        **environment_file(installed / "etc/bcc/portal.env"),
    }
    settings = Settings.from_env(env)
    assert settings.database_url == kit.settings["portal"]["database_url"]
    assert settings.public_url == f"https://{HOST}"
    assert settings.site_file == Path("/etc/bcc/sites/room.yaml")
    assert settings.mqtt is not None and settings.mqtt.accounts == 8
    assert settings.mqtt.password.get_secret_value() == (creds / "mqtt-portal").read_text().strip()


def test_nginx_accepts_the_rendered_site(installed: Path, tmp_path: Path) -> None:
    text = (installed / "etc/nginx/sites-available/bcc-portal.conf").read_text(encoding="utf-8")
    assert f"server_name {HOST};" in text and "example" not in text.split("server_name", 1)[1]
    text = text.replace("/etc/bcc/tls/", f"{installed}/etc/bcc/tls/")
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    result = nginx_test(prefix, text)
    assert result.returncode == 0, result.stderr


def broker_conf(root: Path, plain: int, tls_port: int) -> Path:
    """The installed mosquitto.conf with the root's paths, this user, free ports on 127.0.0.1."""
    text = (root / "etc/mosquitto/mosquitto.conf").read_text(encoding="utf-8")
    replace = {
        "/etc/mosquitto/": f"{root}/etc/mosquitto/",
        "persistence_location /var/lib/mosquitto/": f"persistence_location {root}/data/",
        "\nuser mosquitto\n": "\nuser root\n",
        "listener 1883 127.0.0.1": f"listener {plain} 127.0.0.1",
        "listener 8883\n": f"listener {tls_port} 127.0.0.1\n",
    }
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    (root / "data").mkdir()
    conf = root / "broker.conf"
    conf.write_text(text, encoding="utf-8")
    return conf


@pytest.mark.skipif(os.geteuid() != 0, reason="the installed files belong to root and mosquitto")
async def test_mosquitto_serves_tls_with_the_installed_files(installed: Path) -> None:
    binary = find_mosquitto()
    assert binary, "mosquitto not installed: run scripts/sysdeps.sh"
    plain, tls_port = free_port(), free_port()
    conf = broker_conf(installed, plain, tls_port)
    context = ssl.create_default_context(cafile=str(installed / "etc/mosquitto/bcc/tls/ca.crt"))
    secret = (installed / "etc/bcc/secrets/mqtt-gateway").read_text().strip()
    portal = (installed / "etc/bcc/secrets/mqtt-portal").read_text().strip()
    with (installed / "broker.log").open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            binary, "-c", str(conf), stdout=log, stderr=log, preexec_fn=die_with_parent()
        )
    try:

        async def tls_login() -> tuple[int] | None:
            with contextlib.suppress(OSError, TimeoutError, asyncio.IncompleteReadError):
                return (await mqtt_login("127.0.0.1", tls_port, "gateway", secret, tls=context),)
            assert proc.returncode is None, (installed / "broker.log").read_text()
            return None

        assert await eventually(tls_login, timeout=10) == (0,)
        assert await mqtt_login("127.0.0.1", tls_port, "gateway", "not-the-password", tls=context) == 5
        assert await mqtt_login("127.0.0.1", plain, "portal_8", portal) == 0
    finally:
        await stop_process(proc)


def test_second_run_changes_nothing(kit: Kit, installed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(installed)
    code, out, _ = install(kit, installed, capsys)
    assert code == 0
    assert out.strip().splitlines()[-1].startswith("bcc install: unchanged (")
    assert snapshot(installed) == before


def test_changes_are_applied_and_secrets_kept(
    kit: Kit, installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secrets_dir = installed / "etc/bcc/secrets"
    before = {n: (secrets_dir / n).read_text() for n in SECRET_NAMES}
    passwd = (installed / "etc/mosquitto/bcc/passwd").read_bytes()
    (secrets_dir / "mqtt-readonly").chmod(0o644)
    kit.settings["portal"]["workers"] = 12
    kit.settings["secrets"] = {"influx-recorder": "given-influx-Kx7q2Lm9"}
    code, out, _ = install(kit, installed, capsys)
    assert code == 0
    changed = dict(
        line.split(": ", 1)[::-1] for line in out.splitlines() if line.startswith(("updated", "fixed"))
    )
    assert changed == {
        "/etc/bcc/secrets/mqtt-readonly": "fixed",
        "/etc/bcc/secrets/influx-recorder": "updated",
        "/etc/systemd/system/bcc-portal.service": "updated",
        "/etc/bcc/portal.env": "updated",
        "/etc/mosquitto/bcc/passwd": "updated",  # portal_9 .. portal_12
        "/etc/mosquitto/bcc/acl": "updated",
        "/etc/bcc/install-manifest.json": "updated",
    }
    assert stat.S_IMODE((secrets_dir / "mqtt-readonly").stat().st_mode) == 0o600
    after = {n: (secrets_dir / n).read_text() for n in SECRET_NAMES}
    assert after == {**before, "influx-recorder": "given-influx-Kx7q2Lm9\n"}
    assert (installed / "etc/mosquitto/bcc/passwd").read_bytes() != passwd
    assert "--workers 12 " in (installed / "etc/systemd/system/bcc-portal.service").read_text()


def _free_url(database: str) -> str:
    parts = urlsplit(database)
    return database.replace(f"{parts.hostname}:{parts.port or 5432}", f"127.0.0.1:{free_port()}")


REFUSALS = [
    pytest.param(edit, line, id=name)
    for name, edit, line in [
        (
            "weak-secret",
            lambda s: s.update(secrets={"mqtt-gateway": "short1"}),
            "{settings}: secrets: mqtt-gateway: weak: 6 characters, at least 16 needed",
        ),
        (
            "missing-secret",
            lambda s: s.update(secrets={"mqtt-gateway": ""}),
            "{settings}: secrets: mqtt-gateway: missing",
        ),
        (
            "placeholder-key",
            lambda s: s.update(secrets={"portal-secret-key": "changeme" * 4}),
            "{settings}: secrets: portal-secret-key: weak: fewer than 8 different characters",
        ),
        (
            "no-db-password",
            lambda s: s["portal"].update(database_url="postgresql://bcc_portal@127.0.0.1:5432/bcc"),
            "{settings}: portal.database_url: the database password: missing",
        ),
        (
            "cert-other-host",
            lambda s: s["tls"]["portal"].update(cert="tls/other.crt", key="tls/other.key"),
            f"tls.portal.cert {{folder}}/tls/other.crt: the certificate is not for {HOST}",
        ),
        (
            "cert-expired",
            lambda s: s["tls"]["portal"].update(cert="tls/expired.crt", key="tls/expired.key"),
            "tls.portal.cert {folder}/tls/expired.crt: the certificate has expired",
        ),
        (
            "key-mismatch",
            lambda s: s["tls"]["portal"].update(key="tls/other.key"),
            "tls.portal.key {folder}/tls/other.key: does not belong to the certificate "
            "{folder}/tls/portal.crt",
        ),
        (
            "wrong-ca",
            lambda s: s["tls"]["broker"].update(ca="tls/other.crt"),
            "tls.broker.cert {folder}/tls/mqtt.crt: not signed by tls.broker.ca {folder}/tls/other.crt",
        ),
        (
            "cert-missing",
            lambda s: s["tls"]["portal"].update(cert="tls/missing.crt"),
            "tls.portal.cert {folder}/tls/missing.crt: no such file",
        ),
        (
            "not-a-cert",
            lambda s: s["tls"]["portal"].update(cert="tls/portal.key"),
            "tls.portal.cert {folder}/tls/portal.key: not a PEM certificate",
        ),
        (
            "db-down",
            lambda s: s["portal"].update(database_url=_free_url(s["portal"]["database_url"])),
            "portal.database_url: cannot connect to ",
        ),
    ]
]


def refused(kit: Kit, code: int, out: str, err: str, line: str) -> None:
    """Exit 2, the one line that names the problem, and the closing line; the password never shown."""
    assert code == 2 and not out
    lines = err.strip().splitlines()
    assert lines[-1] == "bcc install: nothing was written"
    expected = "bcc install: refused: " + line.format(folder=kit.folder, settings=kit.path)
    assert len(lines) == 2 and lines[0].startswith(expected), err
    password = urlsplit(kit.settings["portal"]["database_url"]).password
    assert not password or password not in err


@pytest.mark.parametrize(("edit", "line"), REFUSALS)
def test_refusals_leave_the_root_empty(
    kit: Kit, tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: Any, line: str
) -> None:
    edit(kit.settings)
    root = tmp_path / "root"
    code, out, err = install(kit, root, capsys)
    refused(kit, code, out, err, line)
    assert not root.exists() or not any(root.iterdir())


@pytest.mark.parametrize(
    ("edit", "line"),
    [p for p in REFUSALS if p.id in ("missing-secret", "cert-other-host", "cert-expired", "db-down")],
)
def test_refusals_leave_an_installed_root_unchanged(
    kit: Kit, installed: Path, capsys: pytest.CaptureFixture[str], edit: Any, line: str
) -> None:
    """A later run with one bad setting (and a change that would rewrite files) touches nothing."""
    before = snapshot(installed)
    kit.settings["portal"]["workers"] = 6
    edit(kit.settings)
    code, out, err = install(kit, installed, capsys)
    refused(kit, code, out, err, line)
    assert snapshot(installed) == before


def test_every_settings_problem_is_listed_at_once(
    kit: Kit, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kit.settings.update(host="portal", services=["broker", "mail"], sites={"Room 1": "x.yaml"}, colour="red")
    del kit.settings["tls"]["broker"]
    code, _, err = install(kit, tmp_path / "root", capsys)
    assert code == 2
    problems = [ln.split(": ", 3)[-1] for ln in err.splitlines()[:-1]]
    assert len(problems) == 4, err
    assert any("'portal' is not a fully qualified host name" in p for p in problems)
    assert any("'broker', 'nginx', 'portal', 'gateway', 'recorder' or 'grafana'" in p for p in problems)
    assert any("lower-case letters" in p for p in problems)
    assert any("Extra inputs are not permitted" in p for p in problems)
    assert not (tmp_path / "root").exists()


def test_a_broken_site_file_is_refused_with_its_problems(
    kit: Kit, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = kit.folder / "sites" / "room.yaml"
    site.write_text(site.read_text().replace("influxdb: {auth: basic, username: bcc_recorder}", ""))
    code, _, err = install(kit, tmp_path / "root", capsys)
    assert code == 2
    assert "the recorder needs `influxdb: {auth: basic, username: bcc_recorder}`" in err, err
    assert not (tmp_path / "root").exists()


@pytest.mark.parametrize("side", ["center", "building"])
def test_a_bridged_site_must_require_command_ts(
    kit: Kit, tmp_path: Path, capsys: pytest.CaptureFixture[str], side: str
) -> None:
    """Through a bridge, a command without ts sent during a WAN cut would wait on a broker and run when
    the link returns: neither the center (``bridges:``) nor the building (``bridge:``) installs that."""
    site = kit.folder / "sites" / "room.yaml"
    text = site.read_text()
    assert "  require_command_ts: true\n" in text
    site.write_text(text.replace("  require_command_ts: true\n", "  require_command_ts: false\n"))
    if side == "center":
        kit.settings["bridges"] = ["room"]
    else:
        kit.settings["bridge"] = {"site": "room", "address": MQTT_HOST, "ca": "tls/ca.crt"}
    code, _, err = install(kit, tmp_path / "root", capsys)
    assert code == 2
    assert f"sites.room {site}: gateway.require_command_ts: false is for a gateway on a local broker" in err
    assert not (tmp_path / "root").exists()
    kit.settings.pop("bridges" if side == "center" else "bridge")  # the same site without a bridge: fine
    code, _, err = install(kit, tmp_path / "root", capsys, "--check")
    assert code == 0, err


def test_check_writes_nothing(kit: Kit, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = install(kit, tmp_path / "root", capsys, "--check")
    assert code == 0 and "files would be written" in out
    assert not (tmp_path / "root").exists()


def test_password_file_matches_only_the_same_accounts_and_passwords(tmp_path: Path) -> None:
    users = {"gateway": "gateway-password-1", "portal_1": "portal-password-1"}
    text = write_password_file(tmp_path / "passwd", users).read_text()
    assert password_file_matches(text, users)
    assert not password_file_matches(text, {**users, "gateway": "another-password"})
    assert not password_file_matches(text, {**users, "portal_2": "portal-password-1"})
    assert not password_file_matches(text.replace("$7$", "$6$"), users)


def test_venv_is_created_kept_and_updated_with_the_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real venv and pip, offline: a tiny source tree (tests/deploy/tiny_backend.py builds it)."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    source, venv = tmp_path / "source", tmp_path / "opt" / "venv"
    (source / "bcc").mkdir(parents=True)
    shutil.copy(Path(__file__).with_name("tiny_backend.py"), source / "tiny_backend.py")
    (source / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "tiny_backend"\nbackend-path = ["."]\n'
    )
    (source / "bcc" / "__init__.py").write_text("")
    (source / "bcc" / "cli.py").write_text("def main() -> None:\n    print('first')\n")

    def bcc() -> str:
        return subprocess.run([venv / "bin" / "bcc"], capture_output=True, text=True, check=True).stdout

    assert ensure_venv(venv, source) == "created" and bcc() == "first\n"
    mtime = (venv / "bin" / "bcc").stat().st_mtime_ns
    assert ensure_venv(venv, source) == "unchanged"
    assert (venv / "bin" / "bcc").stat().st_mtime_ns == mtime
    (source / "bcc" / "cli.py").write_text("def main() -> None:\n    print('second')\n")
    assert ensure_venv(venv, source) == "updated" and bcc() == "second\n"


def test_files_no_longer_in_the_settings_are_named(
    kit: Kit, installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kit.settings["services"] = ["broker", "nginx", "portal", "gateway"]
    code, out, _ = install(kit, installed, capsys)
    assert code == 0
    left = [line for line in out.splitlines() if line.startswith("left in place: ")]
    assert left == [
        f"left in place: /etc/systemd/system/bcc-{unit}@.service (installed before, not in the settings"
        " now: remove it by hand)"
        for unit in ("influx-provision", "recorder")
    ]
    assert (installed / "etc/systemd/system/bcc-recorder@.service").is_file()
    assert "bcc-recorder@room" not in out.split("systemctl enable", 1)[1].splitlines()[0]


def test_a_weak_existing_secret_is_refused_and_nothing_written(
    kit: Kit, installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (installed / "etc/bcc/secrets/mqtt-gateway").write_text("gateway\n")
    kit.settings["portal"]["workers"] = 5
    before = snapshot(installed)
    code, _, err = install(kit, installed, capsys)
    assert code == 2
    assert err.splitlines() == [
        "bcc install: refused: /etc/bcc/secrets/mqtt-gateway (existing): weak: 7 characters, at least 16"
        " needed; replace it or give one in secrets:",
        "bcc install: nothing was written",
    ]
    assert snapshot(installed) == before


def test_the_example_settings_file_is_valid_but_for_its_placeholder_password() -> None:
    with pytest.raises(SettingsFileError) as refused:
        load_settings(ROOT / "deploy" / "settings.example.yaml")
    assert [p.split(": ", 1)[1] for p in refused.value.problems] == [
        "portal.database_url: the database password: weak: a placeholder, not a chosen secret"
    ]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to become nobody")
def test_a_user_other_than_root_is_refused_without_root_dir(tmp_path: Path) -> None:
    done = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m", "bcc",
         "install", "--settings", str(tmp_path / "install.yaml")],
        capture_output=True, text=True, check=False, timeout=60, cwd="/",
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (
        2,
        "bcc install: run as root (or with --root DIR for a trial install)\n",
    )


async def test_influx_provision_unit_and_grafana_use_the_installed_secrets(
    kit: Kit, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a fresh InfluxDB (authentication on, no user): the installed bcc-influx-provision@ unit, run
    with its own command line, environment and credentials, makes the admin, the database and both
    users; Grafana's provisioning, with the values of its installed environment file, reads the data
    and cannot write."""
    server = InfluxdProcess(tmp_path / "influxdb", auth_enabled=True)
    await server.start()
    try:
        site = kit.folder / "sites" / "room.yaml"
        site.write_text(
            site.read_text().replace(
                "username: bcc_recorder}", f"username: bcc_recorder, url: '{server.url}'}}"
            )
        )
        kit.settings["services"] = [*SERVICES, "grafana"]
        root = tmp_path / "root"
        code, out, err = install(kit, root, capsys)
        assert code == 0, err
        assert "bcc-influx-provision@room.service" in out and "grafana-server" in out
        unit = parse_unit(root / "etc/systemd/system/bcc-influx-provision@.service")
        creds = tmp_path / "creds"
        creds.mkdir()
        for name, source in unit.credentials().items():  # what LoadCredential= hands the unit
            shutil.copy(root / source.lstrip("/"), creds / name)
        (argv,) = unit.commands("ExecStart", "room", bcc=VENV_BCC)
        argv = [str(root / a.lstrip("/")) if a.startswith("/etc/bcc/") else a for a in argv]
        env = {k: v for k, v in os.environ.items() if not k.startswith("BCC_")}
        env.update(unit.environment("room", str(creds)))
        for _ in range(2):  # idempotent: the second start changes nothing
            done = await asyncio.to_thread(
                subprocess.run, argv, env=env, capture_output=True, text=True, timeout=60, check=False
            )
            assert done.returncode == 0, done.stderr
        assert "admin bcc_admin created" not in done.stdout and "unchanged" in done.stdout, done.stdout

        grafana = environment_file(root / "etc/bcc/grafana.env")
        assert stat.S_IMODE((root / "etc/bcc/grafana.env").stat().st_mode) == 0o600
        provisioning = root / "etc/grafana/provisioning"
        for path in (provisioning / "datasources/bcc-influxdb.yaml", provisioning / "dashboards/bcc.yaml"):
            text = "\n".join(ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("#"))
            used = set(re.findall(r"\$\{(\w+)\}", text))
            assert used and used <= set(grafana), (path, used - set(grafana))
        assert (
            (root / "etc/systemd/system/grafana-server.service.d/bcc.conf")
            .read_text()
            .endswith("[Service]\nEnvironmentFile=/etc/bcc/grafana.env\n")
        )
        boards = root / grafana["BCC_GRAFANA_DASHBOARDS"].lstrip("/")
        shipped = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
        assert [(p.name, p.read_bytes()) for p in sorted(boards.glob("*.json"))] == [
            (p.name, p.read_bytes()) for p in shipped
        ]
        assert grafana["BCC_INFLUX_URL"] == server.url
        who = (grafana["BCC_INFLUX_GRAFANA_USER"], grafana["BCC_INFLUX_GRAFANA_PASSWORD"])
        recorder = ("bcc_recorder", (root / "etc/bcc/secrets/influx-recorder").read_text().strip())
        async with httpx.AsyncClient(base_url=server.url, params={"db": "bcc"}) as client:
            wrote = await client.post("/write", content=b"probe v=1", auth=recorder)
            assert wrote.status_code == 204
            read = await asyncio.to_thread(influx_as, server.url, who, "SELECT count(v) FROM probe")
            assert read["series"][0]["values"][0][1] == 1, read
            assert (await client.post("/write", content=b"probe v=2", auth=who)).status_code == 403
    finally:
        await server.stop()


def test_the_brokers_tls_listener_binds_the_address_given(
    kit: Kit, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``tls.broker.bind``: the TLS listener answers on that address only (shipped: every interface, so
    the outside network reached it in the netns test); anything but an IP address is refused."""
    kit.settings["tls"]["broker"]["bind"] = "10.20.0.5"
    root = tmp_path / "root"
    code, _, err = install(kit, root, capsys)
    assert code == 0, err
    conf = (root / "etc/mosquitto/mosquitto.conf").read_text(encoding="utf-8")
    shipped = PRODUCTION_CONF.read_text(encoding="utf-8")
    assert "\nlistener 8883\n" in shipped and "\nlistener 8883\n" not in conf
    assert conf == shipped.replace("\nlistener 8883\n", "\nlistener 8883 10.20.0.5\n")
    kit.settings["tls"]["broker"]["bind"] = "eth1"
    code, out, err = install(kit, tmp_path / "other", capsys)
    assert code == 2 and not out and "tls.broker.bind" in err and "IP" in err, err
    assert not (tmp_path / "other").exists()


def test_a_building_broker_is_bridged_to_the_center_with_its_own_account(
    kit: Kit, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The center's install (``bridges:``) makes the bridge's account, secret and an ACL block that names
    only its gateway's topics and devices; the building's install (``bridge:``) appends the bridge to
    its mosquitto.conf (0640: it holds the password) with the queue bounds given, and serves no TLS
    listener of its own. A building without the center's secret is refused. tests/deploy/test_wan.py
    runs both brokers."""
    center_root, building_root = tmp_path / "center", tmp_path / "building"
    kit.settings["bridges"] = ["room"]
    code, out, err = install(kit, center_root, capsys)
    assert code == 0, err
    assert "generated: /etc/bcc/secrets/mqtt-bridge-bcc_room" in out
    secret = (center_root / "etc/bcc/secrets/mqtt-bridge-bcc_room").read_text().strip()
    passwd = (center_root / "etc/mosquitto/bcc/passwd").read_text()
    assert passwd.startswith("bridge_bcc_room:") or "\nbridge_bcc_room:" in passwd
    acl = (center_root / "etc/mosquitto/bcc/acl").read_text()
    block = acl[acl.index("user bridge_bcc_room\n") :]
    rules = [ln for ln in block.splitlines()[1:] if ln.startswith("topic ")]
    site = load_site(kit.folder / "sites" / "room.yaml").site
    devices = sorted(d.id for d in site.devices)
    expected = [f"topic write bcc/bridge/bcc_room/{leaf}" for leaf in ("state", "devices", "health")]
    expected += ["topic write bcc/bridge/bcc_room/telemetry", "topic write bcc/bridge/bcc_room/link"]
    for device in devices:
        expected += [f"topic write bcc/{device}", f"topic write bcc/{device}/availability"]
        expected += [f"topic write bcc/{device}/response", f"topic read bcc/{device}/set"]
    assert rules == expected
    assert "bcc/+" not in block and "#" not in "\n".join(rules)  # nothing beyond its own topics
    # the backlog of a cut lands in the center's recorder queue at once: bigger than the packaged 10,000
    center_conf = (center_root / "etc/mosquitto/mosquitto.conf").read_text().splitlines()
    assert "max_queued_messages 10000" in PRODUCTION_CONF.read_text().splitlines()
    assert "max_queued_messages 200000" in center_conf and f"max_queued_bytes {2**30}" in center_conf

    building = Kit(tmp_path / "building-admin", {})
    shutil.copytree(kit.folder, building.folder)
    building.settings = {
        "host": "gedung.binjai.test",
        "services": ["broker", "gateway"],
        "sites": {"room": "sites/room.yaml"},
        "bridge": {
            "site": "room",
            "address": MQTT_HOST,
            "ca": "tls/ca.crt",
            "queue_messages": 50_000,
            "queue_bytes": 256 * 2**20,
        },
    }
    code, out, err = install(building, building_root, capsys)
    assert code == 2 and "secrets.mqtt-bridge-bcc_room: missing; copy /etc/bcc/secrets/mqtt-bridge" in err
    assert not building_root.exists()
    building.settings["secrets"] = {"mqtt-bridge-bcc_room": secret}
    code, out, err = install(building, building_root, capsys)
    assert code == 0, err
    path = building_root / "etc/mosquitto/mosquitto.conf"
    conf = path.read_text(encoding="utf-8")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    lines = conf.splitlines()
    assert "listener 8883" not in lines and "listener 1883 127.0.0.1" in lines
    assert "max_queued_messages 50000" in lines and f"max_queued_bytes {256 * 2**20}" in lines
    bridge = lines[lines.index("connection bcc-bcc_room") :]
    for line in (
        f"address {MQTT_HOST}:8883",
        "bridge_cafile /etc/mosquitto/bcc/tls/center-ca.crt",
        "remote_username bridge_bcc_room",
        f"remote_password {secret}",
        "cleansession false",
        "notifications true",
        "notification_topic bcc/bridge/bcc_room/link",
        "topic bridge/bcc_room/telemetry out 1 bcc/ bcc/",
        "topic +/set in 1 bcc/ bcc/",
    ):
        assert line in bridge, line
    ca = (building_root / "etc/mosquitto/bcc/tls/center-ca.crt").read_bytes()
    assert ca == (kit.folder / "tls" / "ca.crt").read_bytes()
