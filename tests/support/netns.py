"""Several "hosts" on one machine for the production-layout test (tests/deploy/test_netns_e2e.py).

Each host is a network namespace (``ip netns``) with its own loopback and ports; the ``server`` is
joined to the ``building`` and to the ``outside`` by one veth pair each (two /24 links, no routing
between them), so a process in the building reaches nothing but the server's address on its link, and
the outside nothing but the server's address on the other. ``/etc/netns/<name>/hosts`` gives each host
its own ``/etc/hosts`` (``ip netns exec`` bind-mounts it), so clients use the real host names of the
certificates. Services are started with ``ip netns exec <name> ARGV`` (``ip`` execs the program: the
child's pid is the service's), and the test reads the hosts through programs run the same way (curl).

Everything is removed when the ``Network`` closes, also after a failure: every process left in a
namespace is killed, the namespaces, their veths and the hosts files are deleted. Names carry a random
tag, so parallel runs do not clash.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.units import VENV_BCC, Unit, environment_file
from tests.support.wait import eventually_sync

IP = shutil.which("ip") or "/usr/sbin/ip"
NETNS_ETC = Path("/etc/netns")
# Systemd's environment for a system service (no PATH of the test's shell, no venv activation).
SERVICE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


def require_netns() -> None:
    """Fail (never skip) with what is missing: the test needs root and iproute2's ``ip netns``."""
    if os.geteuid() != 0:
        pytest.fail("the network-namespace test needs root (ip netns add, veth); run make test as root")
    if not Path(IP).exists():
        pytest.fail("ip not installed: run scripts/sysdeps.sh (Debian package: iproute2)")
    probe = f"bcc-probe-{secrets.token_hex(4)}"
    made = subprocess.run([IP, "netns", "add", probe], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.fail(f"`ip netns add` does not work on this machine: {made.stderr.strip()}")
    subprocess.run([IP, "netns", "del", probe], capture_output=True, check=False)


@dataclass
class Host:
    """One network namespace: ``address`` is where the server reaches it (the server: 127.0.0.1)."""

    name: str
    role: str
    address: str
    scratch: Path  # a short folder of this host's run (notify sockets, credentials)
    processes: list[tuple[str, subprocess.Popen[bytes], Path]] = field(default_factory=list)
    # systemd's notify sockets, open while the services run (they also send STOPPING=1)
    sockets: list[socket.socket] = field(default_factory=list)

    def argv(self, cmd: Sequence[str]) -> list[str]:
        return [IP, "netns", "exec", self.name, *cmd]

    def run(
        self,
        cmd: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float = 120,
        check: bool = True,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.argv(cmd),
            env=dict(env or SERVICE_ENV),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=cwd,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{self.role}: {' '.join(cmd)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def spawn(
        self,
        what: str,
        cmd: Sequence[str],
        log: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start a long-running service in this host; its output goes to ``log``."""
        with log.open("ab") as out:
            proc = subprocess.Popen(
                self.argv(cmd),
                env=dict(env or SERVICE_ENV),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=cwd,
            )
        self.processes.append((what, proc, log))
        return proc

    def alive(self) -> None:
        """Fail naming the first service of this host that exited, with the end of its log."""
        for what, proc, log in self.processes:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-3000:]
                raise AssertionError(f"{self.role}: {what} exited with {proc.returncode}:\n{tail}")

    def curl(self, *args: str, timeout: float = 30) -> str:
        """``curl`` run in this host (the test's eyes inside it); the body, failing on HTTP errors."""
        return self.run(
            ["curl", "--silent", "--show-error", "--fail", "--max-time", "10", *args], timeout=timeout
        ).stdout

    def connects(self, address: str, port: int) -> bool:
        """Whether a TCP connection from this host to ``address:port`` is accepted (2 s at most)."""
        probe = self.run(
            ["bash", "-c", f"exec 3<>/dev/tcp/{address}/{port}"],
            check=False,
            timeout=10,
            env={**SERVICE_ENV},
        )
        return probe.returncode == 0

    def terminate(self) -> None:
        """SIGTERM to every service started here that still runs (as systemd stops them)."""
        for _what, proc, _log in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    def reap(self, timeout: float = 20) -> None:
        """Wait for the services to end, SIGKILL after ``timeout``; then kill any process left here."""
        for _what, proc, _log in self.processes:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        left = subprocess.run([IP, "netns", "pids", self.name], capture_output=True, text=True, check=False)
        for pid in left.stdout.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        for sock in self.sockets:
            sock.close()


@dataclass
class Network:
    """``server`` linked to ``building`` (10.201.1.0/24) and to ``outside`` (10.201.2.0/24)."""

    tag: str
    server: Host
    building: Host
    outside: Host
    building_link: str = "eth0"  # the building's interface (in the building namespace)

    @property
    def hosts(self) -> tuple[Host, Host, Host]:
        return (self.server, self.building, self.outside)

    def set_building_link(self, up: bool) -> None:
        """Cut (``up=False``) or restore the building's only link, as a pulled cable would."""
        state = "up" if up else "down"
        subprocess.run([IP, "-n", self.building.name, "link", "set", self.building_link, state], check=True)

    def alive(self) -> None:
        for host in self.hosts:
            host.alive()


SERVER_ON_BUILDING_LINK = "10.201.1.1"
SERVER_ON_OUTSIDE_LINK = "10.201.2.1"


def _ip(*args: str) -> None:
    subprocess.run([IP, *args], check=True, capture_output=True, timeout=30)


def _link(server: Host, peer: Host, server_if: str, server_addr: str, tag: str) -> None:
    """A veth pair: ``server_if`` in the server, ``eth0`` in ``peer``, one /24 between them."""
    a, b = f"bs{tag}{server_if[-1]}", f"bp{tag}{server_if[-1]}"  # temporary names, unique on the machine
    _ip("link", "add", a, "type", "veth", "peer", "name", b)
    _ip("link", "set", a, "netns", server.name)
    _ip("link", "set", b, "netns", peer.name)
    _ip("-n", server.name, "link", "set", a, "name", server_if)
    _ip("-n", peer.name, "link", "set", b, "name", "eth0")
    _ip("-n", server.name, "addr", "add", f"{server_addr}/24", "dev", server_if)
    _ip("-n", peer.name, "addr", "add", f"{peer.address}/24", "dev", "eth0")
    _ip("-n", server.name, "link", "set", server_if, "up")
    _ip("-n", peer.name, "link", "set", "eth0", "up")


@contextlib.contextmanager
def three_hosts(hosts_files: Mapping[str, Mapping[str, str]]) -> Iterator[Network]:
    """The three namespaces and their links; ``hosts_files`` maps a role to {name: address} for its
    /etc/hosts. Everything is removed on exit."""
    require_netns()
    tag = secrets.token_hex(3)
    scratch = Path(tempfile.mkdtemp(prefix=f"bcc-{tag}-", dir="/tmp"))
    scratch.chmod(0o711)  # services that drop root (PostgreSQL) reach their own folders in it
    net = Network(
        tag,
        server=Host(f"bcc-{tag}-server", "server", "127.0.0.1", scratch / "server"),
        building=Host(f"bcc-{tag}-building", "building", "10.201.1.2", scratch / "building"),
        outside=Host(f"bcc-{tag}-outside", "outside", "10.201.2.2", scratch / "outside"),
    )
    made: list[Host] = []
    try:
        for host in net.hosts:
            host.scratch.mkdir(mode=0o711)
            _ip("netns", "add", host.name)
            made.append(host)
            _ip("-n", host.name, "link", "set", "lo", "up")
            names = hosts_files.get(host.role, {})
            folder = NETNS_ETC / host.name
            folder.mkdir(parents=True, exist_ok=True)
            lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
            lines += [f"{address} {name}" for name, address in names.items()]
            (folder / "hosts").write_text("\n".join(lines) + "\n", encoding="utf-8")
        _link(net.server, net.building, "tobuilding", SERVER_ON_BUILDING_LINK, tag)
        _link(net.server, net.outside, "tooutside", SERVER_ON_OUTSIDE_LINK, tag)
        yield net
    finally:
        for host in made:
            host.terminate()
        for host in made:
            host.reap()
        for host in reversed(made):
            subprocess.run([IP, "netns", "del", host.name], capture_output=True, check=False)
            shutil.rmtree(NETNS_ETC / host.name, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)


def wait_alive(who: Host | Network, check: Callable[[], object], what: str, timeout: float = 30) -> None:
    """``eventually_sync`` that fails at once when a service of ``who`` (a host, or all) has exited."""

    def both() -> object:
        who.alive()
        return check()

    eventually_sync(both, timeout=timeout, step=0.1, what=what)


# ---- the shipped units, run in a host ----------------------------------------------------------

# Paths of the target system that a test keeps under its own root folder (the installer's --root).
# A path starts a value, a word or a ``key=value`` / ``name:path`` item.
_SYSTEM_PATH = re.compile(r"(^|(?<=[\s=:\"']))(/etc/bcc/|/etc/mosquitto/|/var/lib/|/run/)", re.MULTILINE)


def relocate(text: str, root: Path) -> str:
    """``text`` with every target-system path (/etc/bcc/..., /var/lib/..., /run/...) under ``root``."""
    return _SYSTEM_PATH.sub(lambda m: f"{root}{m.group(2)}", text)


def notify_socket(folder: Path) -> socket.socket:
    """A datagram socket standing in for systemd's (a path: abstract sockets belong to one network
    namespace, a path is reachable from all of them)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(folder / "notify"))
    sock.settimeout(0.1)
    return sock


def start_unit(
    host: Host, u: Unit, root: Path, logs: Path, *, instance: str = "", ready_timeout: float = 90
) -> subprocess.Popen[bytes]:
    """Run ``u`` in ``host`` as systemd would, with the target system's paths under ``root``: the
    credentials copied from their ``LoadCredential=`` files, ``Environment=`` and ``EnvironmentFile=``,
    the state and runtime directories, every ``ExecStartPre=`` to completion, ``ExecStart=``, then
    readiness: ``READY=1`` on the notify socket (``Type=notify``) and every ``ExecStartPost=``."""
    name = u.name.replace("@.", f"@{instance}.")
    run = host.scratch / name  # short: a socket path has at most 108 bytes
    run.mkdir()
    creds = run / "credentials"
    creds.mkdir(mode=0o700)
    for cred, path in u.credentials().items():
        shutil.copyfile(relocate(path, root), creds / cred)
    env = {**SERVICE_ENV, **u.environment(instance, str(creds)), "CREDENTIALS_DIRECTORY": str(creds)}
    for path in u.values("Service", "EnvironmentFile"):
        env.update(environment_file(Path(relocate(path, root))))
    for key, variable, base in (
        ("StateDirectory", "STATE_DIRECTORY", "/var/lib/"),
        ("RuntimeDirectory", "RUNTIME_DIRECTORY", "/run/"),
    ):
        if (value := u.value("Service", key)) is not None:
            folder = Path(relocate(base + u.expand(value, instance), root))
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            env[variable] = str(folder)
    env = {k: relocate(v, root) for k, v in env.items()}
    notify = u.value("Service", "Type") == "notify"
    sock = notify_socket(run) if notify else None
    if sock is not None:
        env["NOTIFY_SOCKET"] = str(run / "notify")
        host.sockets.append(sock)
    for argv in u.commands("ExecStartPre", instance, bcc=VENV_BCC):
        host.run([relocate(a, root) for a in argv], env=env, timeout=ready_timeout)
    (argv,) = u.commands("ExecStart", instance, bcc=VENV_BCC)
    proc = host.spawn(name, [relocate(a, root) for a in argv], logs / f"{name}.log", env=env, cwd=root)
    if sock is not None:
        ready: list[bytes] = []

        def told_ready() -> bool:
            host.alive()
            with contextlib.suppress(TimeoutError):
                ready.append(sock.recv(4096))
            return any(b"READY=1" in m for m in ready)

        eventually_sync(told_ready, timeout=ready_timeout, step=0, what=f"{name} sent READY=1")
    for argv in u.commands("ExecStartPost", instance, bcc=VENV_BCC):
        host.run([relocate(a, root) for a in argv], env=env, timeout=ready_timeout)
    host.alive()
    return proc
