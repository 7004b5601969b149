"""``bcc install --settings FILE``: the idempotent production installer (docs/operations.md, "Install").

Everything is checked first (settings, site files, certificates against the host names, the database
by a real connection, the secrets) and every file is rendered in memory; only then is anything
written, so a refusal leaves nothing behind. A file is rewritten only when its bytes differ, modes and
owners are fixed in place, and secrets that exist are never replaced (except by one given in the
settings). ``--root DIR`` puts every path under DIR (like DESTDIR) and never runs systemctl.
"""

from __future__ import annotations

import argparse
import grp
import hashlib
import json
import os
import pwd
import secrets
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from bcc.install_settings import (
    MIN_SECRET_LEN,
    MQTT_SECRETS,
    SECRET_NAMES,
    CertKey,
    InstallSettings,
    SettingsFileError,
    bridge_account,
    bridge_secret,
    load_settings,
    secret_min_len,
    weakness,
)
from bcc_contract.accounts import DEFAULT_ACCOUNTS
from devices.loader import ConfigError, LoadedSite, load_site
from mosquitto.accounts import account_passwords, password_file_matches, render_acl, write_password_file
from mosquitto.bridge import BridgeConf, bridge_acl, bridge_section, queue_limits, without_tls_listener
from mosquitto.config import DEFAULT_ACL, PRODUCTION_CONF
from mosquitto.errors import BrokerError

# What the shipped units run (deploy/systemd/) and the placeholders of the shipped files.
INSTALLED_VENV = "/opt/bcc/venv"
INSTALLED_BCC = INSTALLED_VENV + "/bin/bcc"
NGINX_PLACEHOLDER = "portal.example.go.id"
PORTAL_WORKERS = "--workers 4 "
MANIFEST = "/etc/bcc/install-manifest.json"
SECRETS_DIR = "/etc/bcc/secrets"
# The packages whose files make the product (hashed to tell whether the venv needs a new install).
_PACKAGES = ("bcc", "bcc_common", "bcc_contract", "iot_gateway", "devices", "portal", "grafana", "mosquitto")
DB_TIMEOUT_S = 5
# Grafana (from Grafana's own Debian repository: its unit is grafana-server.service)
GRAFANA_INFLUX_USER = "grafana"  # the read-only user bcc-influx-provision@ makes
GRAFANA_ENV = "/etc/bcc/grafana.env"
GRAFANA_DASHBOARDS = "/etc/bcc/grafana/dashboards"
GRAFANA_DROP_IN = "/etc/systemd/system/grafana-server.service.d/bcc.conf"
GRAFANA_DB_LINE = "      dbName: bcc\n"


class InstallRefused(Exception):
    """Nothing was written; ``problems`` has one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Dir:
    path: str
    mode: int
    owner: str = "root"
    group: str = "root"


@dataclass(frozen=True)
class File:
    path: str
    data: bytes
    mode: int
    owner: str = "root"
    group: str = "root"


@dataclass
class Plan:
    """Everything the installer will make, as data (tests read it; ``apply`` writes it)."""

    dirs: list[Dir] = field(default_factory=list)
    files: list[File] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)  # link path -> target
    units: list[str] = field(default_factory=list)  # to enable (instances of the templates)
    generated: list[str] = field(default_factory=list)  # secrets made by this run

    def add(
        self, path: str, data: bytes | str, mode: int = 0o644, owner: str = "root", group: str = "root"
    ) -> None:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        self.files.append(File(path, raw, mode, owner, group))


TLS_LISTENER = "\nlistener 8883\n"


def broker_conf(template: str, bind: object | None) -> str:
    """The shipped mosquitto.conf, its TLS listener bound to ``tls.broker.bind`` when one is given."""
    if bind is None:
        return template
    if TLS_LISTENER not in template:
        raise ValueError("mosquitto.conf: no 'listener 8883' line to bind")
    return template.replace(TLS_LISTENER, f"\nlistener 8883 {bind}\n", 1)


BRIDGE_CA = "/etc/mosquitto/bcc/tls/center-ca.crt"


def bridge_secret_value(
    name: str, settings: InstallSettings, root: Path, problems: list[str], *, generate: bool
) -> tuple[str, bool]:
    """A bridge's secret: given in the settings, else the existing file, else (on the center) generated;
    the building must be given the center's. (value, generated)."""
    path = under(root, f"{SECRETS_DIR}/{name}")
    if name in settings.secrets:
        return settings.secrets[name], False
    if path.is_file():
        value = path.read_text(encoding="utf-8").strip()
        if why := weakness(value, MIN_SECRET_LEN):
            problems.append(f"{SECRETS_DIR}/{name} (existing): {why}; replace it or give one in secrets:")
        return value, False
    if generate:
        return new_secret(name), True
    problems.append(
        f"secrets.{name}: missing; copy {SECRETS_DIR}/{name} from the center (its `bcc install` with "
        "bridges: made it) into secrets:"
    )
    return "", False


def plan_bridges(
    plan: Plan, settings: InstallSettings, loaded: dict[str, LoadedSite], root: Path, problems: list[str]
) -> tuple[dict[str, str], str]:
    """The center's side: an account per bridged building (users -> password) and their ACL blocks."""
    users: dict[str, str] = {}
    acl = []
    for name in settings.bridges:
        if name not in loaded:
            continue  # its site file's problems are listed already
        site = loaded[name].site
        gateway = site.gateway_id
        secret, made = bridge_secret_value(bridge_secret(gateway), settings, root, problems, generate=True)
        plan.add(f"{SECRETS_DIR}/{bridge_secret(gateway)}", secret + "\n", 0o600)
        if made:
            plan.generated.append(bridge_secret(gateway))
        users[bridge_account(gateway)] = secret
        devices = [d.id for d in site.devices]
        acl.append(bridge_acl(bridge_account(gateway), gateway, site.mqtt.base_topic, devices, name))
    return users, "".join(acl)


def building_conf(
    conf: str, settings: InstallSettings, loaded: dict[str, LoadedSite], base: Path, root: Path, plan: Plan,
    problems: list[str],
) -> str:  # fmt: skip
    """The building's mosquitto.conf: the bridge section, its queue bounds, no TLS listener unless given;
    the center's (``bridges:``): the queue bounds of ``bridges_queue``."""
    if settings.bridges:  # the center: the backlog of every building's cut lands in the recorder's queue
        conf = queue_limits(conf, settings.bridges_queue.messages, settings.bridges_queue.bytes)
    bridge = settings.bridge
    if bridge is None or bridge.site not in loaded:
        return conf
    site = loaded[bridge.site].site
    gateway = site.gateway_id
    secret, _ = bridge_secret_value(bridge_secret(gateway), settings, root, problems, generate=False)
    plan.add(f"{SECRETS_DIR}/{bridge_secret(gateway)}", secret + "\n", 0o600)
    plan.add(BRIDGE_CA, _read("bridge.ca", _resolve(base, bridge.ca), problems))
    if settings.tls.broker is None:
        conf = without_tls_listener(conf)
    conf = queue_limits(conf, bridge.queue_messages, bridge.queue_bytes)
    return conf + bridge_section(
        BridgeConf(
            gateway=gateway,
            base=site.mqtt.base_topic,
            address=bridge.address,
            port=bridge.port,
            cafile=BRIDGE_CA,
            account=bridge_account(gateway),
            password=secret,
            keepalive_s=bridge.keepalive_s,
        )
    )


def under(root: Path, path: str) -> Path:
    """``path`` (absolute, on the target system) inside ``root``."""
    return root / path.lstrip("/")


def default_source() -> Path:
    """The checkout this ``bcc`` runs from (deploy/ is not part of the wheel)."""
    return Path(__file__).resolve().parents[1]


# ---- checks ------------------------------------------------------------------------------------


def _openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=False, timeout=30)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "no output")


def check_certificate(what: str, pair: CertKey, host: str, ca: Path | None = None) -> list[str]:
    """The certificate is readable PEM, valid now, names ``host``, matches its key (and ``ca``)."""
    for label, path in (("cert", pair.cert), ("key", pair.key), ("ca", ca)):
        if path is not None and not path.is_file():
            return [f"{what}.{label} {path}: no such file"]
    # openssl x509 prints only one of -checkhost and -checkend: two calls
    named = _openssl("x509", "-in", str(pair.cert), "-noout", "-checkhost", host)
    if named.returncode != 0 or "match" not in named.stdout:
        return [f"{what}.cert {pair.cert}: not a PEM certificate ({_first_line(named.stderr)})"]
    problems = []
    if "does NOT match" in named.stdout:
        problems.append(f"{what}.cert {pair.cert}: the certificate is not for {host}")
    if _openssl("x509", "-in", str(pair.cert), "-noout", "-checkend", "0").returncode != 0:
        problems.append(f"{what}.cert {pair.cert}: the certificate has expired")
    cert_key = _openssl("x509", "-in", str(pair.cert), "-noout", "-pubkey").stdout
    key = _openssl("pkey", "-in", str(pair.key), "-pubout")
    if key.returncode != 0:
        problems.append(f"{what}.key {pair.key}: not a PEM private key ({_first_line(key.stderr)})")
    elif key.stdout != cert_key:
        problems.append(f"{what}.key {pair.key}: does not belong to the certificate {pair.cert}")
    if ca is not None:
        verified = _openssl("verify", "-CAfile", str(ca), str(pair.cert))
        if verified.returncode != 0:
            problems.append(f"{what}.cert {pair.cert}: not signed by {what}.ca {ca}")
    return problems


def check_database(url: str) -> list[str]:
    """A real connection with a short timeout; the message names the server, never the password."""
    parts = urlsplit(url)
    where = f"{parts.username or ''}@{parts.hostname}:{parts.port or 5432}{parts.path}"
    try:
        with psycopg.connect(url, connect_timeout=DB_TIMEOUT_S) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as err:
        return [f"portal.database_url: cannot connect to {where}: {_first_line(str(err))}"]
    return []


def _resolve(base: Path, path: Path) -> Path:
    return path if path.is_absolute() else base / path


def _read(what: str, path: Path, problems: list[str]) -> bytes:
    """The file's bytes; a problem if unreadable (unless a check already named that file)."""
    try:
        return path.read_bytes()
    except OSError as err:
        if not any(p.startswith(f"{what} {path}: ") for p in problems):
            problems.append(f"{what} {path}: cannot read: {err.strerror or err}")
        return b""


# ---- rendering ---------------------------------------------------------------------------------


def render_unit(text: str, venv: str, workers: int | None = None) -> str:
    """A shipped unit for this machine: the venv's ``bcc`` and (the portal) the number of workers."""
    text = text.replace(INSTALLED_BCC, venv.rstrip("/") + "/bin/bcc")
    if workers is not None:
        if PORTAL_WORKERS not in text:
            raise ValueError(f"the portal unit has no {PORTAL_WORKERS.strip()!r} to replace")
        text = text.replace(PORTAL_WORKERS, f"--workers {workers} ")
    return text


def render_env(example: str, values: dict[str, str]) -> str:
    """portal.env from the shipped example: each ``VAR=`` line (commented or not) gets its value."""
    seen = set()
    out = ["# Written by `bcc install` from its settings file: change those and run it again."]
    for line in example.splitlines():
        name = line.lstrip("#").partition("=")[0]
        if name in values and "=" in line and " " not in name:
            out.append(f"{name}={values[name]}")
            seen.add(name)
        else:
            out.append(line)
    if missing := sorted(set(values) - seen):
        raise ValueError(f"portal.env.example has no line for {missing}")
    return "\n".join(out) + "\n"


def new_secret(name: str) -> str:
    """A random secret that passes ``weakness`` (a random one could, very rarely, contain "xxxx")."""
    while True:
        value = secrets.token_hex(32) if name == "portal-secret-key" else secrets.token_urlsafe(24)
        if weakness(value, secret_min_len(name)) is None:
            return value


def secret_values(
    settings: InstallSettings, root: Path, problems: list[str]
) -> tuple[dict[str, str], list[str]]:
    """Every secret: given in the settings, else the existing file (kept), else generated."""
    values: dict[str, str] = {}
    generated = []
    for name in SECRET_NAMES:
        path = under(root, f"{SECRETS_DIR}/{name}")
        if name in settings.secrets:
            values[name] = settings.secrets[name]
        elif path.is_file():
            values[name] = path.read_text(encoding="utf-8").strip()
            if why := weakness(values[name], secret_min_len(name)):
                problems.append(f"{SECRETS_DIR}/{name} (existing): {why}; replace it or give one in secrets:")
        else:
            values[name] = new_secret(name)
            generated.append(name)
    return values, generated


def hashed_passwd(existing: Path, users: dict[str, str]) -> bytes:
    """The broker's password file: the existing one when it already holds exactly ``users`` (hashes
    are salted, so hashing again would change the file on every run), else a new one."""
    if existing.is_file() and password_file_matches(existing.read_text(encoding="utf-8"), users):
        return existing.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        return write_password_file(Path(tmp) / "passwd", users).read_bytes()


def _text(resource: Traversable | Path) -> str:
    return resource.read_text(encoding="utf-8")


def build_plan(settings: InstallSettings, base: Path, root: Path, source: Path, venv: str) -> Plan:
    """Check everything and render every file; InstallRefused lists every problem (nothing written)."""
    problems: list[str] = []
    deploy = source / "deploy"
    if not (deploy / "systemd" / "bcc-portal.service").is_file():
        raise InstallRefused([f"{deploy}: the shipped deploy/ files are not there; pass --source CHECKOUT"])
    plan = Plan()
    values, plan.generated = secret_values(settings, root, problems)
    as_root = os.geteuid() == 0
    if as_root and settings.wants("broker"):
        try:
            pwd.getpwnam("mosquitto")
        except KeyError:
            problems.append("user mosquitto does not exist: apt-get install mosquitto (Debian 12)")

    influx_of: dict[str, tuple[str, str]] = {}  # site -> its InfluxDB URL and database
    loaded_sites: dict[str, LoadedSite] = {}
    plan.dirs += [Dir("/etc/bcc", 0o755), Dir("/etc/bcc/sites", 0o755), Dir(SECRETS_DIR, 0o700)]
    plan.dirs.append(Dir("/etc/systemd/system", 0o755))
    for name in SECRET_NAMES:
        plan.add(f"{SECRETS_DIR}/{name}", values[name] + "\n", 0o600)

    for name, site_path in settings.sites.items():
        path = _resolve(base, site_path)
        try:
            loaded = load_site(path)
        except ConfigError as err:
            problems += [f"sites.{name}: {p}" for p in err.problems]
            continue
        loaded_sites[name] = loaded
        bridged = name in settings.bridges or (settings.bridge is not None and settings.bridge.site == name)
        if bridged and not loaded.site.gateway.require_command_ts:
            problems.append(
                f"sites.{name} {path}: gateway.require_command_ts: false is for a gateway on a local broker "
                "only; this site's commands cross a bridge, where a command without ts sent during a WAN "
                "cut would run when the link returns"
            )
        influx = loaded.site.influxdb
        if settings.wants("recorder") and (
            influx is None or influx.auth != "basic" or influx.username != settings.influxdb_username
        ):
            problems.append(
                f"sites.{name} {path}: the recorder needs `influxdb: {{auth: basic, username: "
                f"{settings.influxdb_username}}}` in the site file (InfluxDB runs with authentication)"
            )
        plan.add(f"/etc/bcc/sites/{name}.yaml", _read(f"sites.{name}", path, problems))
        if influx is not None:
            influx_of[name] = (influx.url, influx.database)

    units = deploy / "systemd"
    # bcc-influx-provision@: InfluxDB's database, users and retention before each recorder starts
    for service in ("gateway", "influx-provision", "recorder"):
        if settings.wants("recorder" if service == "influx-provision" else service):
            unit = f"bcc-{service}@.service"
            plan.add(f"/etc/systemd/system/{unit}", render_unit(_text(units / unit), venv))
            plan.units += [f"bcc-{service}@{site}.service" for site in settings.sites]

    portal = settings.portal
    if portal is not None and settings.wants("portal"):
        problems += check_database(portal.database_url)
        env = render_env(
            _text(deploy / "portal.env.example"),
            {
                "BCC_PORTAL_DATABASE_URL": portal.database_url,
                "BCC_PORTAL_PUBLIC_URL": f"https://{settings.host}",
                "BCC_PORTAL_JURISDICTION_ID": portal.jurisdiction_id,
                "BCC_PORTAL_SITE_FILE": f"/etc/bcc/sites/{portal.site}.yaml",
                "BCC_PORTAL_MQTT_ACCOUNTS": str(portal.mqtt_accounts),
            },
        )
        plan.add("/etc/bcc/portal.env", env, 0o600)
        plan.add(
            "/etc/systemd/system/bcc-portal.service",
            render_unit(_text(units / "bcc-portal.service"), venv, portal.workers),
        )
        plan.units.append("bcc-portal.service")

    tls = settings.tls
    if settings.wants("nginx") and tls.portal is not None:
        pair = CertKey(cert=_resolve(base, tls.portal.cert), key=_resolve(base, tls.portal.key))
        problems += check_certificate("tls.portal", pair, settings.host)
        site = _text(deploy / "nginx" / "bcc-portal.conf")
        if NGINX_PLACEHOLDER not in site:
            problems.append(f"deploy/nginx/bcc-portal.conf: no server_name {NGINX_PLACEHOLDER} to replace")
        plan.dirs += [
            Dir("/etc/bcc/tls", 0o700),
            Dir("/etc/nginx/sites-available", 0o755),
            Dir("/etc/nginx/sites-enabled", 0o755),
        ]
        plan.add("/etc/bcc/tls/portal.crt", _read("tls.portal.cert", pair.cert, problems))
        plan.add("/etc/bcc/tls/portal.key", _read("tls.portal.key", pair.key, problems), 0o600)
        plan.add("/etc/nginx/sites-available/bcc-portal.conf", site.replace(NGINX_PLACEHOLDER, settings.host))
        plan.links["/etc/nginx/sites-enabled/bcc-portal.conf"] = "/etc/nginx/sites-available/bcc-portal.conf"

    if settings.wants("broker") and tls.broker is not None:
        b = tls.broker
        pair = CertKey(cert=_resolve(base, b.cert), key=_resolve(base, b.key))
        ca = _resolve(base, b.ca)
        problems += check_certificate("tls.broker", pair, b.host or settings.host, ca)
        plan.add("/etc/mosquitto/bcc/tls/ca.crt", _read("tls.broker.ca", ca, problems))
        plan.add("/etc/mosquitto/bcc/tls/server.crt", _read("tls.broker.cert", pair.cert, problems))
        plan.add(
            "/etc/mosquitto/bcc/tls/server.key",
            _read("tls.broker.key", pair.key, problems),
            0o640,
            "root",
            "mosquitto",
        )
    if settings.wants("broker") and (tls.broker is not None or settings.bridge is not None):
        counts = {"portal": portal.mqtt_accounts} if portal else dict(DEFAULT_ACCOUNTS)
        users = account_passwords({role: values[name] for role, name in MQTT_SECRETS.items()}, counts)
        bridge_users, bridge_rules = plan_bridges(plan, settings, loaded_sites, root, problems)
        users.update(bridge_users)
        bind = tls.broker.bind if tls.broker is not None else None
        conf = broker_conf(_text(PRODUCTION_CONF), bind)
        conf = building_conf(conf, settings, loaded_sites, base, root, plan, problems)
        if not problems:  # hashing runs mosquitto_passwd: only for a plan that will be written
            try:
                passwd = hashed_passwd(under(root, "/etc/mosquitto/bcc/passwd"), users)
            except BrokerError as err:
                problems.append(f"broker: {err}")
            else:
                plan.add("/etc/mosquitto/bcc/passwd", passwd, 0o600, "mosquitto", "mosquitto")
        plan.dirs += [
            Dir("/etc/mosquitto", 0o755),
            Dir("/etc/mosquitto/bcc", 0o750, "mosquitto", "mosquitto"),
        ]
        plan.dirs.append(Dir("/etc/mosquitto/bcc/tls", 0o750, "root", "mosquitto"))
        # with a bridge the file holds the bridge's password: readable by Mosquitto's group only
        private = settings.bridge is not None
        mode, group = (0o640, "mosquitto") if private else (0o644, "root")
        plan.add("/etc/mosquitto/mosquitto.conf", conf, mode, "root", group)
        acl = render_acl(_text(DEFAULT_ACL), counts) + bridge_rules
        plan.add("/etc/mosquitto/bcc/acl", acl, 0o640, "root", "mosquitto")

    if settings.wants("grafana"):
        plan_grafana(plan, settings, source, values["influx-grafana"], influx_of, problems)

    if problems:
        raise InstallRefused(problems)
    return plan


def plan_grafana(
    plan: Plan,
    settings: InstallSettings,
    source: Path,
    password: str,
    influx_of: dict[str, tuple[str, str]],
    problems: list[str],
) -> None:
    """Grafana's provisioning (grafana/provisioning/) with the dashboards, pointed at InfluxDB's read-only
    user: the files keep their ``${VAR}`` references, and a drop-in gives Grafana's unit the values from
    /etc/bcc/grafana.env (root 0600: systemd reads it, Grafana gets only its environment)."""
    site = settings.portal.site if settings.portal is not None else next(iter(settings.sites), "")
    if site not in influx_of:
        problems.append(f"grafana: sites.{site} has no influxdb: section (the dashboards' database)")
        return
    url, database = influx_of[site]
    shipped = source / "grafana"
    datasource = _text(shipped / "provisioning" / "datasources" / "influxdb.yaml")
    if GRAFANA_DB_LINE not in datasource:
        problems.append(f"grafana/provisioning/datasources/influxdb.yaml: no {GRAFANA_DB_LINE.strip()!r}")
    datasource = datasource.replace(GRAFANA_DB_LINE, GRAFANA_DB_LINE.replace("bcc", database))
    provisioning = "/etc/grafana/provisioning"
    plan.dirs += [
        Dir("/etc/grafana", 0o755),
        Dir(provisioning, 0o755),
        Dir(f"{provisioning}/datasources", 0o755),
    ]
    plan.dirs += [Dir(f"{provisioning}/dashboards", 0o755), Dir("/etc/bcc/grafana", 0o755)]
    plan.dirs += [Dir(GRAFANA_DASHBOARDS, 0o755), Dir(GRAFANA_DROP_IN.rsplit("/", 1)[0], 0o755)]
    plan.add(f"{provisioning}/datasources/bcc-influxdb.yaml", datasource)
    plan.add(
        f"{provisioning}/dashboards/bcc.yaml", _text(shipped / "provisioning" / "dashboards" / "bcc.yaml")
    )
    for board in sorted((shipped / "dashboards").glob("*.json")):
        plan.add(f"{GRAFANA_DASHBOARDS}/{board.name}", board.read_bytes())
    env = {
        "BCC_INFLUX_URL": url,
        "BCC_INFLUX_GRAFANA_USER": GRAFANA_INFLUX_USER,
        "BCC_INFLUX_GRAFANA_PASSWORD": password,
        "BCC_GRAFANA_DASHBOARDS": GRAFANA_DASHBOARDS,
    }
    lines = ["# Written by `bcc install`: Grafana's provisioning variables (grafana/provisioning/)."]
    plan.add(GRAFANA_ENV, "\n".join([*lines, *(f"{k}={v}" for k, v in env.items())]) + "\n", 0o600)
    plan.add(GRAFANA_DROP_IN, f"# Written by `bcc install`.\n[Service]\nEnvironmentFile={GRAFANA_ENV}\n")


# ---- writing -----------------------------------------------------------------------------------


def _ids(owner: str, group: str) -> tuple[int, int]:
    return pwd.getpwnam(owner).pw_uid, grp.getgrnam(group).gr_gid


def _fix(path: Path, mode: int, owner: str, group: str, chown: bool) -> bool:
    """Set mode (and owner when root); True if anything was different."""
    st = path.stat()
    changed = False
    if st.st_mode & 0o7777 != mode:
        os.chmod(path, mode)
        changed = True
    if chown:
        uid, gid = _ids(owner, group)
        if (st.st_uid, st.st_gid) != (uid, gid):
            os.chown(path, uid, gid)
            changed = True
    return changed


def _write(path: Path, f: File, chown: bool) -> None:
    """Atomically: a temporary file with the final mode and owner, renamed over ``path``."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(f.data)
            out.flush()
            os.fsync(out.fileno())
        _fix(tmp, f.mode, f.owner, f.group, chown)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def manifest(plan: Plan) -> bytes:
    """Path, checksum, mode and owner of every file written: the record a later run compares with."""
    files = {
        f.path: {
            "sha256": hashlib.sha256(f.data).hexdigest(),
            "mode": f"{f.mode:04o}",
            "owner": f"{f.owner}:{f.group}",
        }
        for f in sorted(plan.files, key=lambda f: f.path)
    }
    return (json.dumps({"files": files, "links": plan.links, "units": plan.units}, indent=1) + "\n").encode()


def installed_files(root: Path) -> set[str]:
    """The files and links the last run's manifest lists (none if there is no readable manifest)."""
    try:
        last = json.loads(under(root, MANIFEST).read_text(encoding="utf-8"))
        return {*last["files"], *last["links"]}
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def apply(plan: Plan, root: Path) -> dict[str, str]:
    """Write the plan under ``root``; path -> created, updated, fixed (mode/owner) or unchanged."""
    chown = os.geteuid() == 0
    status: dict[str, str] = {}
    for d in plan.dirs:
        path = under(root, d.path)
        if not path.is_dir():
            path.mkdir(parents=True, mode=d.mode)
            _fix(path, d.mode, d.owner, d.group, chown)
            status[d.path + "/"] = "created"
        else:
            status[d.path + "/"] = "fixed" if _fix(path, d.mode, d.owner, d.group, chown) else "unchanged"
    files = [*plan.files, File(MANIFEST, b"", 0o600)]
    for f in files:
        if f.path == MANIFEST:
            f = File(MANIFEST, manifest(plan), 0o600)
        path = under(root, f.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_file() and not path.is_symlink() and path.read_bytes() == f.data:
            status[f.path] = "fixed" if _fix(path, f.mode, f.owner, f.group, chown) else "unchanged"
            continue
        status[f.path] = "updated" if path.exists() else "created"
        _write(path, f, chown)
    for link, target in plan.links.items():
        path = under(root, link)
        if path.is_symlink() and os.readlink(path) == target:
            status[link] = "unchanged"
            continue
        status[link] = "updated" if path.is_symlink() or path.exists() else "created"
        path.unlink(missing_ok=True)
        path.symlink_to(target)
    return status


# ---- the virtualenv and systemd ----------------------------------------------------------------


def source_stamp(source: Path) -> str:
    """A checksum of the product's files in ``source`` (what `pip install` would install)."""
    digest = hashlib.sha256((source / "pyproject.toml").read_bytes())
    for package in _PACKAGES:
        for path in sorted((source / package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(source)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def ensure_venv(venv: Path, source: Path) -> str:
    """Create the venv and install ``source`` into it unless it already holds exactly that source."""
    stamp_file = venv / ".bcc-install-source"
    stamp = source_stamp(source)
    if stamp_file.is_file() and stamp_file.read_text().strip() == stamp and (venv / "bin" / "bcc").exists():
        return "unchanged"
    created = not (venv / "bin" / "python").exists()
    if created:
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", str(source)], check=True)
    stamp_file.write_text(stamp + "\n")
    return "created" if created else "updated"


def systemd_running() -> bool:
    """systemd is PID 1 (sd_booted(3): /run/systemd/system exists)."""
    return Path("/run/systemd/system").is_dir()


def systemctl_commands(plan: Plan, settings: InstallSettings) -> list[list[str]]:
    services = [*plan.units]
    wanted = {"mosquitto": "broker", "nginx": "nginx", "grafana-server": "grafana"}
    services += [name for name, service in wanted.items() if settings.wants(service)]
    return [
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", *plan.units],
        ["systemctl", "reload-or-restart", *services],
    ]


# ---- command line ------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--settings", type=Path, required=True, help="the settings file (deploy/settings.example.yaml)"
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=Path("/"),
        help="install under this directory (like DESTDIR); never runs systemctl",
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=None,
        help="the BCC checkout with deploy/ (default: the one this bcc runs from)",
    )
    parser.add_argument(
        "--venv", default=INSTALLED_VENV, help=f"the virtualenv the units run (default {INSTALLED_VENV})"
    )
    parser.add_argument(
        "--no-venv", action="store_true", help="do not create or update the virtualenv (it must exist)"
    )
    parser.add_argument("--check", action="store_true", help="check everything, write nothing")


def _refused(problems: list[str]) -> int:
    for problem in problems:
        print(f"bcc install: refused: {problem}", file=sys.stderr)
    print("bcc install: nothing was written", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    root: Path = args.root.resolve()
    source: Path = (args.source or default_source()).resolve()
    if root == Path("/") and os.geteuid() != 0:
        print("bcc install: run as root (or with --root DIR for a trial install)", file=sys.stderr)
        return 2
    settings_path: Path = args.settings.resolve()
    try:
        settings = load_settings(settings_path)
        plan = build_plan(settings, settings_path.parent, root, source, args.venv)
    except (SettingsFileError, InstallRefused) as err:
        return _refused(err.problems)
    if args.check:
        print(f"bcc install: settings checked, {len(plan.files)} files would be written")
        return 0
    venv_status = "unchanged"
    if not args.no_venv:
        try:
            venv_status = ensure_venv(under(root, args.venv), source)
        except subprocess.CalledProcessError as err:
            print(
                f"bcc install: {' '.join(map(str, err.cmd))} failed (exit {err.returncode}); no file written",
                file=sys.stderr,
            )
            return 1
    previous = installed_files(root)
    status = apply(plan, root)
    if venv_status != "unchanged":
        status[args.venv + "/"] = venv_status
    changed = {path: s for path, s in status.items() if s != "unchanged"}
    for path, s in changed.items():
        print(f"{s}: {path}")
    for name in plan.generated:
        print(f"generated: {SECRETS_DIR}/{name}")
    for path in sorted(previous - {f.path for f in plan.files} - set(plan.links)):
        print(f"left in place: {path} (installed before, not in the settings now: remove it by hand)")
    if not changed:
        print(f"bcc install: unchanged ({len(status)} files and directories checked)")
        return 0
    print(f"bcc install: {len(changed)} of {len(status)} files and directories written or fixed")
    commands = systemctl_commands(plan, settings)
    if root != Path("/") or not systemd_running():
        why = "--root given" if root != Path("/") else "systemd is not PID 1 on this machine"
        print(f"bcc install: systemctl not run ({why}); on the server run:")
        for argv in commands:
            print("  " + " ".join(argv))
        return 0
    for argv in commands:
        if subprocess.run(argv, check=False).returncode != 0:
            print(
                f"bcc install: files written, but `{' '.join(argv)}` failed: see journalctl -xe",
                file=sys.stderr,
            )
            return 1
    print("bcc install: units enabled and (re)started")
    return 0
