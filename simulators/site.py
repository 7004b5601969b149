"""Run a whole site's devices: one pymodbus server per bus, every device on its bus's server.

``start_site`` is the one entry point used by the CLI (``python -m simulators``), the pytest fixtures
(``tests/support/simulators.py``), the demo and the benchmarks.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any, cast

from pymodbus.framer import FramerType
from pymodbus.simulator.simcore import SimCore

from devices.loader import LoadedSite, site_from_dict
from devices.site import RtuBus, TcpBus
from simulators.device import DeviceSim
from simulators.handler import BusSerialServer, BusTcpServer
from simulators.memory import Memory, build_sim_device
from simulators.physics import RoomPhysics
from simulators.serialpair import SerialPair


class SimulatorError(RuntimeError):
    """A bus server could not start (port taken, no pty)."""


class SiteSimulator:
    """The running simulators of one site. Create it with ``start_site``; stop it with ``stop``."""

    def __init__(self, loaded: LoadedSite, host: str) -> None:
        self.loaded = loaded
        self.host = host
        #: bus name -> {"type": "tcp", "host": ..., "port": ...} or {"type": "rtu", "port": "/dev/pts/N"}
        self.endpoints: dict[str, dict[str, Any]] = {}
        #: device id -> simulated device
        self.devices: dict[str, DeviceSim] = {}
        self.physics: RoomPhysics | None = None
        self._servers: list[BusTcpServer | BusSerialServer] = []
        self._pairs: list[SerialPair] = []
        self._physics_task: asyncio.Task[None] | None = None

    def device(self, device_id: str) -> DeviceSim:
        try:
            return self.devices[device_id]
        except KeyError:
            known = ", ".join(sorted(self.devices))
            raise KeyError(f"no simulated device {device_id!r} (known: {known})") from None

    def site_for_clients(self) -> LoadedSite:
        """The site with every bus pointing at the simulator's bound port or pty (validated again)."""
        raw = self.loaded.site.model_dump(mode="json")
        for bus in raw["buses"]:
            ep = self.endpoints[bus["name"]]
            if ep["type"] == "tcp":
                bus["host"], bus["port"] = ep["host"], ep["port"]
            else:
                bus["port"] = ep["port"]
        return site_from_dict(raw, self.loaded.profiles)

    def _bus_devices(self, bus_name: str) -> list[Any]:
        return [d for d in self.loaded.site.devices if d.bus == bus_name]

    def _attach(self, server: BusTcpServer | BusSerialServer, bus_name: str) -> None:
        for inst in self._bus_devices(bus_name):
            profile = self.loaded.profile_of(inst)
            runtime = cast(SimCore, server.context).devices[inst.unit]
            memory = Memory(runtime, profile)
            dev = DeviceSim(inst, profile, memory)
            server.bcc_devices[inst.unit] = dev
            self.devices[inst.id] = dev

    def _sim_devices(self, bus_name: str) -> list[Any]:
        return [build_sim_device(d.unit, self.loaded.profile_of(d)) for d in self._bus_devices(bus_name)]

    async def _start_tcp(self, bus: TcpBus, port: int) -> None:
        framer = FramerType.SOCKET if bus.framer == "socket" else FramerType.RTU
        server = BusTcpServer(self._sim_devices(bus.name), self.host, port, framer)
        self._attach(server, bus.name)
        try:
            await server.serve_forever(background=True)
        except RuntimeError as err:
            raise SimulatorError(f"bus {bus.name}: cannot listen on {self.host}:{port}") from err
        self._servers.append(server)
        self.endpoints[bus.name] = {"type": "tcp", "host": self.host, "port": server.bound_port}

    async def _start_rtu(self, bus: RtuBus) -> None:
        pair = SerialPair(bus.name)
        self._pairs.append(pair)
        await pair.start()
        server = BusSerialServer(
            self._sim_devices(bus.name),
            pair.server_path,
            bus.baudrate,
            bus.parity,
            bus.stopbits,
            bus.bytesize,
        )
        self._attach(server, bus.name)
        try:
            await server.serve_forever(background=True)
        except RuntimeError as err:
            raise SimulatorError(f"bus {bus.name}: cannot open {pair.server_path}") from err
        self._servers.append(server)
        self.endpoints[bus.name] = {"type": "rtu", "port": pair.client_path}

    def start_physics(self, period_s: float, seed: int | None = None) -> None:
        self.physics = RoomPhysics(list(self.devices.values()), random.Random(seed))
        self._physics_task = asyncio.create_task(self.physics.run(period_s), name="bcc-sim-physics")

    async def stop(self) -> None:
        """Stop physics, close every server and client connection, remove the ptys. Idempotent."""
        if self._physics_task is not None:
            self._physics_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._physics_task
            self._physics_task = None
        for server in self._servers:
            await server.shutdown()  # type: ignore[no-untyped-call]
        self._servers.clear()
        for pair in self._pairs:
            await pair.stop()
        self._pairs.clear()


async def start_site(
    loaded: LoadedSite,
    *,
    host: str = "127.0.0.1",
    physics: bool = True,
    physics_period_s: float = 0.5,
    port: int | None = None,
    port_base: int | None = None,
    seed: int | None = None,
) -> SiteSimulator:
    """Start one server per bus of ``loaded`` and return once all of them accept requests.

    Args:
        loaded: the validated site and its profiles.
        host: address every TCP bus binds (the site's own bus hosts are where clients find the
            real gateways, not where the simulator should listen).
        physics: run the room model (lights -> lux and power, displays -> heat); False keeps every
            served value fixed until a client or a test changes it.
        physics_period_s: seconds between physics steps.
        port: bind every TCP bus on this port (0: a free port each); None keeps the site's ports.
        port_base: bind the TCP buses on port_base, port_base + 1, ... in site order.
        seed: seed of the physics noise, for reproducible runs.
    """
    if port is not None and port_base is not None:
        raise ValueError("give port or port_base, not both")
    sim = SiteSimulator(loaded, host)
    try:
        tcp_index = 0
        for bus in loaded.site.buses:
            if isinstance(bus, TcpBus):
                bus_port = bus.port if port is None and port_base is None else port or 0
                if port_base is not None:
                    bus_port = port_base + tcp_index
                tcp_index += 1
                await sim._start_tcp(bus, bus_port)
            else:
                await sim._start_rtu(bus)
        if physics:
            sim.start_physics(physics_period_s, seed)
    except BaseException:
        await sim.stop()
        raise
    return sim
