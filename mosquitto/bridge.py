"""A building behind a WAN: its Mosquitto bridged to the center's (docs/operations.md, "Add a building").

The building's gateway runs against its own broker, so local control keeps working when the WAN link
drops; Mosquitto's bridge carries the gateway's topics to the center and the commands for its devices
back. Two pieces are rendered here, both by ``bcc install``:

- ``bridge_section``: the ``connection`` section appended to the building's mosquitto.conf (TLS to the
  center, the account ``bridge_<gateway>``, a persistent session, QoS 1 for what must not be lost,
  notifications with the bridge's last will on ``<base>/bridge/<gateway>/link``);
- ``bridge_acl``: that account's block in the center's ACL, listing the gateway's own topics and the
  devices of its site file one by one (an ACL pattern cannot say "the devices of this gateway"), so a
  building can neither publish another building's state nor read its commands.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# The gateway's bridge leaves that go to the center (the lease, the transaction claims and the sync
# marker stay in the building: they concern only the processes on the building's broker).
OUT_LEAVES: tuple[tuple[str, int], ...] = (("state", 1), ("devices", 1), ("health", 0), ("telemetry", 1))


@dataclass(frozen=True)
class BridgeConf:
    gateway: str
    base: str
    address: str
    port: int
    cafile: str
    account: str
    password: str
    keepalive_s: int


def bridge_section(b: BridgeConf) -> str:
    """The ``connection`` section for the end of the building's mosquitto.conf."""
    lines = [
        "",
        "# ==== Bridge to the center (written by `bcc install` from bridge: in its settings) ==============",
        "",
        "# The building's broker forwards its gateway's topics to the center's broker over TLS; the",
        "# gateway and the building's own clients never depend on the WAN (docs/operations.md).",
        f"connection bcc-{b.gateway}",
        f"address {b.address}:{b.port}",
        f"bridge_cafile {b.cafile}",
        "bridge_tls_version tlsv1.2",
        "bridge_insecure false",
        "bridge_protocol_version mqttv311",
        "# The center's account of this bridge (ACL: only this gateway's topics); the file is 0640.",
        f"remote_username {b.account}",
        f"remote_password {b.password}",
        f"remote_clientid {b.account}",
        "# Persistent sessions on both sides: the center keeps QoS 1 messages for the bridge (commands),",
        "# the building keeps them for the center (telemetry) while the link is down, bounded by",
        "# max_queued_messages and max_queued_bytes above.",
        "cleansession false",
        "local_cleansession false",
        f"local_clientid bridge-{b.gateway}",
        "# A dead link is noticed after 1.5 keepalives; a lost link is retried every 2 to 10 s.",
        f"keepalive_interval {b.keepalive_s}",
        "restart_timeout 2 10",
        "start_type automatic",
        "# 1 when connected, 0 when not: on the center the bridge's last will, so the console shows the",
        "# building offline during a cut (the gateway's own last will stays on this broker).",
        "notifications true",
        "notifications_local_only false",
        f"notification_topic {b.base}/bridge/{b.gateway}/link",
        "# Only what the center needs; `topic PATTERN DIRECTION QOS LOCAL_PREFIX REMOTE_PREFIX`.",
    ]
    prefix = f"{b.base}/"
    lines += [f"topic bridge/{b.gateway}/{leaf} out {qos} {prefix} {prefix}" for leaf, qos in OUT_LEAVES]
    lines += [
        "# Device state is retained: QoS 0 (the latest is sent again on every reconnection); the",
        "# history travels in the bulk telemetry above, QoS 1 and queued.",
        f"topic + out 0 {prefix} {prefix}",
        f"topic +/availability out 1 {prefix} {prefix}",
        f"topic +/response out 1 {prefix} {prefix}",
        "# Commands from the center; one queued during a cut arrives after it and the gateway answers",
        "# it `stale` (older than gateway.command_ttl_s), never executing it (one without ts: `rejected`).",
        f"topic +/set in 1 {prefix} {prefix}",
    ]
    return "\n".join(lines) + "\n"


def bridge_acl(account: str, gateway: str, base: str, devices: Iterable[str], site: str) -> str:
    """The center's ACL block of the bridge ``account`` carrying ``gateway`` (site file ``site``)."""
    lines = [
        "",
        f"# The bridge of building {site!r} (gateway {gateway!r}, written by `bcc install` from bridges:):",
        "# its gateway's topics and its own devices', nothing else.",
        f"user {account}",
        *(f"topic write {base}/bridge/{gateway}/{leaf}" for leaf, _qos in OUT_LEAVES),
        f"topic write {base}/bridge/{gateway}/link",
    ]
    for device in sorted(devices):
        lines += [
            f"topic write {base}/{device}",
            f"topic write {base}/{device}/availability",
            f"topic write {base}/{device}/response",
            f"topic read {base}/{device}/set",
        ]
    return "\n".join(lines) + "\n"


def queue_limits(conf: str, messages: int, queued_bytes: int) -> str:
    """``conf`` with its global max_queued_messages and max_queued_bytes replaced (the bridge's queue)."""
    out = []
    found = set()
    for line in conf.splitlines():
        key = line.split(" ", 1)[0]
        if key in ("max_queued_messages", "max_queued_bytes") and key not in found:
            found.add(key)
            line = f"{key} {messages if key == 'max_queued_messages' else queued_bytes}"
        out.append(line)
    if len(found) != 2:
        raise ValueError("mosquitto.conf: no max_queued_messages / max_queued_bytes line to set")
    return "\n".join(out) + "\n"


def without_tls_listener(conf: str) -> str:
    """``conf`` without its ``listener 8883`` block (a building's broker serves only its own host)."""
    lines = conf.splitlines()
    try:
        start = lines.index("listener 8883")
    except ValueError as err:
        raise ValueError("mosquitto.conf: no 'listener 8883' block to remove") from err
    end = start + 1
    while end < len(lines) and lines[end].strip() and not lines[end].startswith("# Optional"):
        end += 1
    note = "# (no TLS listener: this building's broker serves only its own host)"
    kept = [*lines[:start], note, *lines[end:]]
    return "\n".join(kept) + "\n"
