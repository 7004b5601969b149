"""The shipped systemd units (deploy/systemd/) as data: their settings and exact command lines.

Tests run the services with these command lines (systemd is not PID 1 on test machines), so a unit
and the ``bcc`` argument parser cannot drift apart unnoticed. Only what the shipped units use is
understood: ``[Section]``, ``Key=value`` (repeatable), comments, and the specifiers ``%i`` (instance),
``%d`` (credentials directory) and ``%%``; anything else is an error here rather than a silent guess.
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support.paths import ROOT

UNIT_DIR = ROOT / "deploy" / "systemd"
# Where the units expect the product (the installer's virtualenv); tests substitute their own.
INSTALLED_BCC = "/opt/bcc/venv/bin/bcc"
VENV_BCC = str(Path(sys.executable).with_name("bcc"))
_SPECIFIER = re.compile(r"%(.)")


@dataclass(frozen=True)
class Unit:
    path: Path
    sections: dict[str, list[tuple[str, str]]]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def template(self) -> bool:
        return self.name.split(".")[0].endswith("@")

    def values(self, section: str, key: str) -> list[str]:
        return [v for k, v in self.sections.get(section, []) if k == key]

    def value(self, section: str, key: str) -> str | None:
        found = self.values(section, key)
        return found[-1] if found else None

    def expand(self, text: str, instance: str = "", credentials: str = "/run/credentials/unit") -> str:
        def one(m: re.Match[str]) -> str:
            spec = m.group(1)
            if spec == "i":
                if not self.template or not instance:
                    raise ValueError(f"{self.name}: %i needs a template and an instance")
                return instance
            if spec == "d":
                return credentials
            if spec == "%":
                return "%"
            raise ValueError(f"{self.name}: specifier %{spec} is not handled by tests/support/units.py")

        return _SPECIFIER.sub(one, text)

    def commands(self, key: str, instance: str = "", bcc: str = INSTALLED_BCC) -> list[list[str]]:
        """argv of every ``key`` line (ExecStart, ExecStartPre, ...), ``bcc`` instead of the installed one."""
        out = []
        for line in self.values("Service", key):
            argv = shlex.split(self.expand(line, instance))
            out.append([bcc if a == INSTALLED_BCC else a for a in argv])
        return out

    def environment(self, instance: str = "", credentials: str = "/run/credentials/unit") -> dict[str, str]:
        env: dict[str, str] = {}
        for line in self.values("Service", "Environment"):
            for item in shlex.split(self.expand(line, instance, credentials)):
                name, sep, value = item.partition("=")
                if not sep:
                    raise ValueError(f"{self.name}: Environment item {item!r} has no '='")
                env[name] = value
        return env

    def credentials(self) -> dict[str, str]:
        """``LoadCredential=name:path`` as {name: path}."""
        return dict(v.split(":", 1) for v in self.values("Service", "LoadCredential"))


def environment_file(path: Path) -> dict[str, str]:
    """``VAR=value`` lines of an ``EnvironmentFile=`` (comments and blank lines skipped; no quoting)."""
    env = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            if not sep:
                raise ValueError(f"{path.name}: not a VAR=value line: {line!r}")
            env[name.strip()] = value
    return env


# The portal's EnvironmentFile as shipped (deploy/portal.env.example, installed as /etc/bcc/portal.env).
PORTAL_ENV_EXAMPLE = ROOT / "deploy" / "portal.env.example"


def parse_unit(path: Path) -> Unit:
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.endswith("\\"):
            raise ValueError(f"{path.name}:{number}: continuation lines are not supported here")
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, sep, value = line.partition("=")
        if current is None or not sep:
            raise ValueError(f"{path.name}:{number}: not a Key=value line in a section: {raw!r}")
        current.append((key.strip(), value.strip()))
    return Unit(path, sections)


def shipped_units() -> list[Unit]:
    return [parse_unit(p) for p in sorted(UNIT_DIR.glob("*.service")) + sorted(UNIT_DIR.glob("*.timer"))]


def unit(name: str) -> Unit:
    return parse_unit(UNIT_DIR / name)
