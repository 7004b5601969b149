"""Runtime mosquitto.conf: the packaged production settings with local paths, listeners and TLS.

``mosquitto.conf`` and ``acl`` are package data of this package, read through importlib.resources, so
an installed wheel renders the same config as a source checkout.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from mosquitto.accounts import render_acl
from mosquitto.errors import BrokerError

PRODUCTION_CONF: Traversable = files("mosquitto") / "mosquitto.conf"
DEFAULT_ACL: Traversable = files("mosquitto") / "acl"
# Settings that name files or the OS user: replaced when rendering a runtime config.
_PATH_KEYS = frozenset({"password_file", "acl_file", "persistence_location", "log_dest", "user", "pid_file"})
_REQUIRED = {"allow_anonymous": "false", "per_listener_settings": "false"}
# Mosquitto 2.0 applies these to the listener above them only (measured: a second listener without the
# line keeps the client's own id), so every listener of the template and of a rendered config has them.
LISTENER_REQUIRED: tuple[str, ...] = ("use_username_as_clientid true",)


@dataclass(frozen=True)
class TlsFiles:
    """A TLS listener for render_config (PEM files)."""

    port: int
    cafile: Path
    certfile: Path
    keyfile: Path


def _listener_problems(template: Traversable) -> list[str]:
    """Listeners of ``template`` that lack a LISTENER_REQUIRED line (each one named)."""
    sections: list[tuple[str, set[str]]] = []
    for raw in template.read_text(encoding="utf-8").splitlines():
        line = " ".join(raw.split())
        if line.startswith("listener "):
            sections.append((line, set()))
        elif sections and line and not line.startswith("#"):
            sections[-1][1].add(line)
    return [f"{name}: {need}" for name, lines in sections for need in LISTENER_REQUIRED if need not in lines]


def _global_settings(template: Traversable) -> list[str]:
    """Every setting above the template's first ``listener``, except file paths and ``user``."""
    kept: list[str] = []
    seen: dict[str, str] = {}
    for raw in template.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        if key == "listener":
            break
        seen[key] = value.strip()
        if key not in _PATH_KEYS:
            kept.append(line)
    wrong = {k: v for k, v in _REQUIRED.items() if seen.get(k) != v}
    if wrong:
        raise BrokerError(f"{template} must set {wrong} above its listeners")
    if missing := _listener_problems(template):
        raise BrokerError(f"{template}: every listener needs {LISTENER_REQUIRED}; missing in {missing}")
    return kept


def render_config(
    dest_dir: Path,
    *,
    port: int,
    host: str = "127.0.0.1",
    acl_path: Path | None = None,
    password_path: Path,
    persistence_dir: Path | None = None,
    tls: TlsFiles | None = None,
    template: Traversable = PRODUCTION_CONF,
    accounts: Mapping[str, int] | None = None,
) -> Path:
    """Write ``dest_dir/mosquitto.conf``: the production global settings with local paths and listeners.

    The production listeners are replaced by one on ``host:port`` (plus ``tls``); logs go to stderr.
    Without ``acl_path`` the packaged ACL is rendered for ``accounts`` (per role, default
    DEFAULT_ACCOUNTS) into ``dest_dir/acl``: Mosquitto needs a file path, and the copy keeps the rendered
    directory self-contained. A given ``acl_path`` is used as it is.
    """
    globals_ = _global_settings(template)
    dest_dir.mkdir(parents=True, exist_ok=True)
    if acl_path is None:
        acl_path = dest_dir / "acl"
        fd = os.open(acl_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(render_acl(DEFAULT_ACL.read_text(encoding="utf-8"), accounts))
    persistence_dir = persistence_dir or dest_dir / "data"
    persistence_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Rendered by mosquitto.config.render_config from the packaged mosquitto.conf; do not edit.",
        *globals_,
        f"password_file {password_path.resolve()}",
        f"acl_file {acl_path.resolve()}",
        f"persistence_location {persistence_dir.resolve()}/",
        "log_dest stderr",
        # Only effective when started as root: stay that user so the 0600 files stay readable.
        f"user {getpass.getuser()}",
        f"listener {port} {host}",
        *LISTENER_REQUIRED,
    ]
    if tls is not None:
        lines += [f"listener {tls.port} {host}", *LISTENER_REQUIRED, f"cafile {tls.cafile.resolve()}"]
        lines += [f"certfile {tls.certfile.resolve()}", f"keyfile {tls.keyfile.resolve()}"]
    conf = dest_dir / "mosquitto.conf"
    conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return conf
