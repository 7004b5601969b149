"""Load and validate profiles and sites, reporting every problem at once before anything connects."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from bcc_contract.topics import RESERVED_IDS
from devices.console import ConsolePlan, ConsoleSection, resolve_console
from devices.models import DeviceProfile
from devices.site import Bus, DeviceInstance, Site

_BUS: TypeAdapter[Any] = TypeAdapter(Bus)
PACKAGE_DIR = Path(__file__).resolve().parent
PROFILE_DIR = PACKAGE_DIR / "profiles"
SITE_DIR = PACKAGE_DIR / "sites"
DEMO_SITE = SITE_DIR / "bcc_room.yaml"


class ConfigError(Exception):
    """One or more configuration problems; ``problems`` holds every message."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class LoadedSite:
    """A validated site with the profiles its devices use."""

    site: Site
    profiles: Mapping[str, DeviceProfile]
    path: Path | None = None

    def profile_of(self, device: DeviceInstance) -> DeviceProfile:
        return self.profiles[device.profile]

    def console(self) -> ConsolePlan:
        """What the console draws (the section was checked when the site was loaded)."""
        plan, problems = resolve_console(self.site.console, self.site.devices, self.profiles)
        if problems:
            raise ConfigError(problems)
        return plan


def _read_yaml(path: Path, problems: list[str]) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        problems.append(f"{path}: cannot read: {err.strerror}")
    except yaml.YAMLError as err:
        problems.append(f"{path}: not valid YAML: {err}")
    return None


def _where(raw: Any, loc: tuple[int | str, ...]) -> str:
    """Turn a pydantic error location into words, naming list items by their key or id."""
    words: list[str] = []
    node = raw
    for part in loc:
        if isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
            node = node[part]
            name = (
                node.get("key") or node.get("id") or node.get("name") or node.get("device")
                if isinstance(node, dict)
                else None
            )
            words.append(f"{name}" if name else f"#{part + 1}")
        elif isinstance(part, str):
            node = node.get(part) if isinstance(node, dict) else None
            if part not in ("tcp", "rtu"):
                words.append(part)
        else:
            words.append(str(part))
    return ".".join(words)


def format_validation(path: Path | str, raw: Any, err: ValidationError, prefix: str = "") -> list[str]:
    out = []
    for e in err.errors():
        where = _where(raw, tuple(e["loc"]))
        msg = e["msg"].removeprefix("Value error, ")
        out.append(f"{path}: {prefix}{where + ': ' if where else ''}{msg}")
    return out


def parse_profile(path: Path, problems: list[str]) -> DeviceProfile | None:
    raw = _read_yaml(path, problems)
    if raw is None:
        if path.exists() and not problems:
            problems.append(f"{path}: empty file")
        return None
    name = raw.get("model", path.stem) if isinstance(raw, dict) else path.stem
    try:
        return DeviceProfile.model_validate(raw)
    except ValidationError as err:
        problems += format_validation(path, raw, err, prefix=f"profile {name}: ")
        return None


def load_profiles(dirs: Iterable[Path] = (PROFILE_DIR,)) -> dict[str, DeviceProfile]:
    """Read every ``*.yaml`` profile in ``dirs``; raise ConfigError listing all bad files."""
    problems: list[str] = []
    profiles: dict[str, DeviceProfile] = {}
    origin: dict[str, Path] = {}
    for d in dirs:
        for path in sorted(Path(d).glob("*.yaml")):
            prof = parse_profile(path, problems)
            if prof is None:
                continue
            if prof.model in profiles:
                problems.append(f"{path}: profile {prof.model} already defined in {origin[prof.model]}")
                continue
            profiles[prof.model] = prof
            origin[prof.model] = path
    if problems:
        raise ConfigError(problems)
    return profiles


def check_site(
    site: Site,
    profiles: Mapping[str, DeviceProfile],
    where: str,
    broken_buses: frozenset[str] = frozenset(),
    broken_devices: frozenset[str] = frozenset(),
) -> list[str]:
    """Cross-checks a site against itself and its profiles (``broken_*`` failed their own checks)."""
    problems: list[str] = []
    bus_names = [b.name for b in site.buses]
    for name in {n for n in bus_names if bus_names.count(n) > 1}:
        problems.append(f"{where}: bus {name}: defined more than once")
    tcp_endpoints: dict[tuple[str, int, str], str] = {}
    for b in site.buses:
        if b.type == "tcp" and b.port != 0:
            key = (b.host, b.port, b.framer)
            if key in tcp_endpoints:
                problems.append(f"{where}: bus {b.name}: same endpoint as bus {tcp_endpoints[key]}")
            tcp_endpoints[key] = b.name
    ids = [d.id for d in site.devices]
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
        problems.append(f"{where}: device {dup}: id used more than once")
    units: dict[tuple[str, int], str] = {}
    for dev in site.devices:
        tag = f"{where}: device {dev.id}"
        prof = profiles.get(dev.profile)
        if dev.id in RESERVED_IDS:
            problems.append(f"{tag}: id is reserved for BCC topics ({', '.join(sorted(RESERVED_IDS))})")
        if prof is None:
            problems.append(f"{tag}: unknown profile {dev.profile!r} (known: {', '.join(sorted(profiles))})")
        if dev.bus not in bus_names:
            if dev.bus not in broken_buses:
                problems.append(f"{tag}: unknown bus {dev.bus!r}")
            continue
        unit_key = (dev.bus, dev.unit)
        if unit_key in units:
            problems.append(f"{tag}: unit id {dev.unit} on bus {dev.bus} already used by {units[unit_key]}")
        units[unit_key] = dev.id
        bus = site.bus(dev.bus)
        if bus.type == "rtu" and dev.unit == 0:
            problems.append(f"{tag}: unit id 0 is the RTU broadcast address")
        if prof is None:
            continue
        for group in dev.poll_s:
            if group not in prof.poll_groups:
                problems.append(f"{tag}: poll_s names unknown group {group!r} of profile {prof.model}")
        for group, default in prof.poll_groups.items():
            interval = dev.poll_s.get(group, default.interval_s)
            if bus.timeout_ms / 1000 > interval:
                problems.append(
                    f"{tag}: bus {bus.name} timeout_ms {bus.timeout_ms} is longer than the "
                    f"{group!r} poll interval of {interval} s"
                )
    g = site.gateway
    if g.command_deadline_ms / 1000 > g.command_ttl_s:
        problems.append(f"{where}: gateway: command_deadline_ms exceeds command_ttl_s")
    if g.telemetry_spool_path is not None and g.telemetry_batch_ms is None:
        problems.append(f"{where}: gateway: telemetry_spool_path needs telemetry_batch_ms (bulk telemetry)")
    problems += resolve_console(site.console, site.devices, profiles, where, broken_devices)[1]
    return problems


def load_site(path: Path | str, profile_dirs: Iterable[Path] = (PROFILE_DIR,)) -> LoadedSite:
    """Validate a site file with its profiles; raise ConfigError with every problem found."""
    path = Path(path)
    problems: list[str] = []
    try:
        profiles = load_profiles(profile_dirs)
    except ConfigError as err:
        problems += err.problems
        profiles = {}
    raw = _read_yaml(path, problems)
    site: Site | None = None
    if raw is not None:
        try:
            site = Site.model_validate(raw)
        except ValidationError as err:
            problems += format_validation(path, raw, err)
            partial, broken, broken_devices = _partial_site(raw)
            if partial is not None:
                problems += check_site(partial, profiles, str(path), broken, broken_devices)
        else:
            problems += check_site(site, profiles, str(path))
    elif not problems:
        problems.append(f"{path}: empty site file")
    if problems or site is None:
        raise ConfigError(problems)
    used = {d.profile for d in site.devices}
    return LoadedSite(site=site, profiles={k: v for k, v in profiles.items() if k in used}, path=path)


def _partial_site(raw: Any) -> tuple[Site | None, frozenset[str], frozenset[str]]:
    """The valid parts of an invalid site, so cross-checks still run and every problem is reported
    (with the names of the buses and devices that failed their own validation)."""
    if not isinstance(raw, dict):
        return None, frozenset(), frozenset()
    buses: list[Any] = []
    broken: set[str] = set()
    for item in raw.get("buses") or []:
        try:
            buses.append(_BUS.validate_python(item))
        except ValidationError:
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                broken.add(item["name"])
    devices = []
    broken_devices: set[str] = set()
    for item in raw.get("devices") or []:
        try:
            devices.append(DeviceInstance.model_validate(item))
        except ValidationError:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                broken_devices.add(item["id"])
    try:
        console = ConsoleSection.model_validate(raw["console"]) if raw.get("console") else None
    except ValidationError:
        console = ConsoleSection(circuits=(), walls=(), sensors=(), meters=())  # reported already
    site = Site.model_construct(site="partial", buses=tuple(buses), devices=tuple(devices), console=console)
    return site, frozenset(broken), frozenset(broken_devices)


def site_from_dict(raw: dict[str, Any], profiles: Mapping[str, DeviceProfile]) -> LoadedSite:
    """Build a validated site from a dict (tests and tools that rewrite ports use this)."""
    try:
        site = Site.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation("<site>", raw, err)) from err
    problems = check_site(site, profiles, "<site>")
    if problems:
        raise ConfigError(problems)
    return LoadedSite(site=site, profiles=dict(profiles))
