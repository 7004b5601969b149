"""Active and standby for one gateway (docs/mqtt.md "Active and standby"): two gateway processes with the
same site file, a lease on the broker fenced with an epoch, commands shared through the broker.

The kill test SIGKILLs the active process under a steady command load (a command every 100 ms) and
restarts it as the standby: no command written twice (the simulator's write log), every command
answered, every takeover within 5 s. ``BCC_FAILOVER_KILLS`` sets the number of kills (5 in CI; the
issue's full run is ``BCC_FAILOVER_KILLS=20``, about 2 minutes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from bcc_common.lease import LeaseChange
from bcc_common.net import free_port
from iot_gateway.failover import LeaseLost, LeaseRecord, SharedLease
from iot_gateway.service import Gateway
from mosquitto import MosquittoProcess
from simulators.site import SiteSimulator
from tests.support.bcc_process import bcc
from tests.support.gateway import Probe, gateway_config, probe, site_dict, tuned_site
from tests.support.tcprelay import TcpRelay
from tests.support.wait import eventually

LEASE_S = 2.0
KILLS = int(os.environ.get("BCC_FAILOVER_KILLS", "5"))
LEASE_TOPIC = "bcc/bridge/bcc_room/lease"
DEVICE = "lights_a"


# ---- the lease rule, on a fake clock ----------------------------------------------------------------
def test_the_first_claim_of_an_epoch_wins_for_everyone_and_the_holder_stops_first() -> None:
    a, b = SharedLease("a", LEASE_S), SharedLease("b", LEASE_S)
    claim_a, claim_b = a.claim(0.0), b.claim(0.0)  # both find the lease free at start
    assert claim_a is not None and claim_b is not None and claim_a.epoch == claim_b.epoch == 1
    # The broker delivers b's claim first, to both: b wins, a's claim of the same epoch is void.
    for lease in (a, b):
        lease.on_message(claim_b.payload(), 0.01)
        lease.on_message(claim_a.payload(), 0.02)
    assert b.holds() and b.active(0.02) and not a.holds() and not a.active(0.02)
    # b re-asserts with a new epoch at its next renewal (the retained record was a's void claim).
    assert b.renewal(0.05) is None  # not due yet: every lease_s * 2/9
    renewal = b.renewal(0.5)
    assert renewal is not None and renewal.epoch == 2
    assert a.on_message(renewal.payload(), 0.51) is None and a.current == renewal
    assert b.on_message(renewal.payload(), 0.51) is None and b.active(0.51)
    # b's renewals stop coming back (cut off, or dead): b stops acting 2/3 of a lease after it sent one,
    assert b.active(0.5 + LEASE_S * 2 / 3 - 0.01) and b.expired(0.5 + LEASE_S * 2 / 3)
    # and a may claim only a whole lease after the last renewal it saw, never earlier.
    assert a.claim(0.51 + LEASE_S - 0.01) is None
    claim = a.claim(0.51 + LEASE_S + 0.01)
    assert claim is not None and claim.epoch == 3
    assert a.on_message(claim.payload(), 2.6) is LeaseChange.GAINED
    # b, back and still thinking it held epoch 2, sees the higher epoch: lost.
    b2 = SharedLease("b", LEASE_S)
    b2.on_message(renewal.payload(), 0.0)
    assert not b2.holds(), "a restart under the same name is not the holder"
    released = a.release()
    assert released is not None and LeaseRecord.parse(released.payload()) == released
    assert b2.on_message(released.payload(), 2.7) is None and b2.claim(2.7) is not None  # free at once


# ---- the real thing: two processes, SIGKILL under load ------------------------------------------------
def gateway_process(
    site_file: Path, mosquitto: MosquittoProcess, instance: str, account: int, log: Path
) -> contextlib.AbstractAsyncContextManager[asyncio.subprocess.Process]:
    """``bcc gateway`` for ``site_file`` as ``--instance instance``, on its own broker account."""
    env = {
        "BCC_MQTT_USERNAME": mosquitto.account("gateway", account),
        "BCC_MQTT_PASSWORD": mosquitto.password("gateway"),
        "BCC_LOG_FORMAT": "json",
    }
    return bcc(["gateway", "--site", str(site_file), "--instance", instance], env, log)


class Pair:
    """The gateway's processes by instance name (``a`` logs in as gateway_1, ``b`` as gateway_2)."""

    def __init__(self, site_file: Path, mosquitto: MosquittoProcess, logs: Path) -> None:
        self.site_file, self.mosquitto, self.logs = site_file, mosquitto, logs
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.log_files: dict[str, Path] = {}
        self._stack = contextlib.AsyncExitStack()

    async def start(self, instance: str) -> None:
        account = {"a": 1, "b": 2}[instance]
        log = self.log_files[instance] = self.logs / f"gateway-{instance}-{time.monotonic_ns()}.log"
        self.procs[instance] = await self._stack.enter_async_context(
            gateway_process(self.site_file, self.mosquitto, instance, account, log)
        )

    def log(self, instance: str) -> str:
        return self.log_files[instance].read_text(errors="replace")

    async def kill(self, instance: str) -> None:
        proc = self.procs.pop(instance)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()

    async def close(self) -> None:
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 10)
        await self._stack.aclose()


@dataclass
class Load:
    """A command every 100 ms to the relays of ``DEVICE`` in turn, each relay alternating ON and OFF, so
    a command written twice shows as the same value twice in a row in the simulator's write log."""

    probe: Probe
    sent: list[tuple[str, int, bool]] = field(default_factory=list)  # (transaction, relay, value)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            relay, on = i % 8 + 1, (i // 8) % 2 == 0
            txn = f"c{i:05d}"
            self.sent.append((txn, relay, on))
            cmd = {f"relay_{relay}": "ON" if on else "OFF", "transaction": txn, "ts": time.time()}
            await self.probe.publish(f"bcc/{DEVICE}/set", cmd)
            i += 1
            await asyncio.sleep(0.1)  # the load's pace, not a wait for anything

    def answers(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for resp in self.probe.all(f"bcc/{DEVICE}/response"):
            out.setdefault(str(resp.get("transaction")), []).append(str(resp.get("status")))
        return out


def double_writes(sim: SiteSimulator, load: Load, answers: dict[str, list[str]]) -> list[str]:
    """Replay the commands per relay against the simulator's write log: every ``ok`` one wrote its value
    once, a ``timeout`` one (outcome unknown) at most once, the others never; anything else is named."""
    problems = []
    writes = sim.device(DEVICE).writes
    for relay in range(1, 9):
        actual = [bool(w.values[0]) for w in writes if w.address == relay - 1]
        at = 0
        for txn, r, on in load.sent:
            if r != relay:
                continue
            status = answers[txn][0]
            if status == "ok":
                if at >= len(actual) or actual[at] != on:
                    problems.append(
                        f"relay_{relay}: {txn} ({on}) answered ok, write log {actual[at : at + 3]}"
                    )
                    break
                at += 1
            elif status == "timeout" and at < len(actual) and actual[at] == on:
                at += 1
        else:
            if at != len(actual):
                problems.append(f"relay_{relay}: {len(actual) - at} writes more than commands")
    return problems


@pytest.mark.slow
@pytest.mark.timeout(60 + 15 * KILLS)
@pytest.mark.broker_accounts(gateway=2)
async def test_sigkill_of_the_active_gateway_under_load(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    loop = asyncio.get_running_loop()
    site = tuned_site(room_sim.site_for_clients(), [DEVICE])
    site_file = tmp_path / "site.yaml"
    site_file.write_text(yaml.safe_dump(site_dict(site, mosquitto, lease_s=LEASE_S)), encoding="utf-8")
    pair = Pair(site_file, mosquitto, tmp_path)
    takeovers: list[float] = []
    async with probe(mosquitto, role="operator") as p:
        try:
            await pair.start("a")
            first = await p.wait_for(LEASE_TOPIC, lambda r: r.get("holder") == "a", timeout=15)
            await p.wait_for(f"bcc/{DEVICE}/availability", lambda v: v == "online", timeout=10)
            await pair.start("b")
            await eventually_in_log(pair, "b", "gateway_standby")
            load = Load(p)
            load_task = asyncio.create_task(load.run())
            epoch = first["epoch"]
            for _ in range(KILLS):
                mark = p.mark()
                await p.wait_for(  # the active one answers commands before it is killed
                    f"bcc/{DEVICE}/response", lambda r: r.get("status") == "ok", timeout=10, since=mark
                )
                active = p.all(LEASE_TOPIC)[-1]["holder"]
                mark, killed_at = p.mark(), loop.time()
                await pair.kill(active)
                new = await p.wait_for(LEASE_TOPIC, taken_over(epoch, active), timeout=10, since=mark)
                arrived = next(t for t, r in p.timed(LEASE_TOPIC, mark) if r == new)
                takeovers.append(arrived - killed_at)
                epoch = new["epoch"]
                await pair.start(active)  # back as the standby
                await eventually_in_log(pair, active, "gateway_standby")
            load.stop.set()
            await load_task
            sent = {txn for txn, _, _ in load.sent}
            await eventually(lambda: sent <= set(load.answers()), 20, what="every command answered")
        finally:
            await pair.close()
    answers = load.answers()
    assert not [t for t in sent if len(answers[t]) != 1], "a command answered more than once"
    statuses = sorted({a[0] for a in answers.values()})
    assert set(statuses) <= {"ok", "timeout", "device_unavailable"}, statuses
    if os.environ.get("BCC_FAILOVER_DEBUG"):
        for w in room_sim.device(DEVICE).writes:
            print("W", w.address + 1, bool(w.values[0]), round(w.time % 1000, 3))
        for txn, r, on in load.sent:
            print("C", txn, r, on, answers.get(txn))
        for t, m in zip(p.arrived, p.messages, strict=True):
            if "lease" in str(m.topic) or "response" in str(m.topic):
                print("M", round(t, 3), m.topic, bytes(m.payload)[:150])
    assert double_writes(room_sim, load, answers) == []
    takeovers.sort()
    p99 = takeovers[min(len(takeovers) - 1, int(0.99 * len(takeovers)))]
    print(f"takeovers (s): {[round(t, 2) for t in takeovers]}, p99 {p99:.2f}, commands {len(sent)}")
    assert p99 < 5.0, takeovers
    assert sum(1 for a in answers.values() if a[0] == "ok") >= len(sent) * 0.8, statuses


def taken_over(epoch: int, gone: str) -> Callable[[Any], bool]:
    """A lease record of a newer epoch held by another process (not a release)."""
    return lambda r: bool(r["epoch"] > epoch and r["holder"] not in ("", gone))


async def eventually_in_log(pair: Pair, instance: str, event: str, timeout: float = 15) -> None:
    await eventually(lambda: event in pair.log(instance), timeout, what=f"{event} in {instance}'s log")


# ---- a standby that cannot reach the broker never takes over -------------------------------------------
@pytest.mark.broker_accounts(gateway=2)
async def test_a_standby_without_the_broker_never_takes_over(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess
) -> None:
    site = tuned_site(room_sim.site_for_clients(), [DEVICE])
    nowhere = {"url": f"mqtt://127.0.0.1:{free_port()}"}  # nothing listens there
    cut_off = Gateway(gateway_config(site, mosquitto, nowhere, account=2, lease_s=1.0), instance="b")
    stop = asyncio.Event()
    task = asyncio.create_task(cut_off.run(stop))
    try:
        started = time.monotonic()
        reads = len(room_sim.device(DEVICE).reads)
        while time.monotonic() - started < 3.5:  # 3.5 leases: any claim would have happened
            assert not cut_off.may_act()
            await asyncio.sleep(0.1)
        assert len(room_sim.device(DEVICE).reads) == reads and room_sim.device(DEVICE).writes == []
        assert cut_off.lease is not None and cut_off.lease.current is None
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


# ---- a network split between the active gateway and the broker -----------------------------------------
@pytest.mark.broker_accounts(gateway=2)
async def test_a_split_from_the_broker_never_gives_two_pollers_or_writers(
    room_sim: SiteSimulator, mosquitto: MosquittoProcess
) -> None:
    """The active process reaches the broker through a relay that then cuts the link silently (the
    broker still believes it connected, no last will). It must stop polling and writing before the
    standby starts, and a command sent during the split is executed once, by the standby."""
    site = tuned_site(room_sim.site_for_clients(), [DEVICE], {DEVICE: {"default": 0.1}})
    relay = TcpRelay(mosquitto.host, mosquitto.port)
    await relay.start()
    split = Gateway(gateway_config(site, mosquitto, {"url": relay.url}, account=1, lease_s=1.5), instance="a")
    standby = Gateway(gateway_config(site, mosquitto, account=2, lease_s=1.5), instance="b")
    stops = asyncio.Event(), asyncio.Event()
    runs = [asyncio.create_task(split.run(stops[0]))]
    try:
        await eventually(split.may_act, 10, what="a active")
        runs.append(asyncio.create_task(standby.run(stops[1])))  # after a: it is the standby
        await eventually(lambda: standby.lease is not None and standby.lease.current is not None, 10)
        assert not standby.may_act()
        async with probe(mosquitto, role="operator", subscribe=f"bcc/{DEVICE}/response") as p:
            relay.freeze()
            frozen_at = time.monotonic()
            await p.publish(
                f"bcc/{DEVICE}/set", {"relay_3": "ON", "transaction": "split-1", "ts": time.time()}
            )
            a_stopped = b_started = None
            while b_started is None:  # watch both every 10 ms: which one may act, and when
                now = time.monotonic()
                if a_stopped is None and not split.may_act():
                    a_stopped, polls = now, split.metrics.totals().get("poll_latency_seconds_count", 0.0)
                if standby.may_act():
                    b_started = now
                assert now - frozen_at < 10, "the standby never took over"
                await asyncio.sleep(0.01)
            assert a_stopped is not None and a_stopped < b_started, (a_stopped, b_started)
            resp = await p.wait_for(f"bcc/{DEVICE}/response", lambda r: r["transaction"] == "split-1", 10)
            assert resp["status"] == "ok", resp
        # The cut-off process polled nothing after its fence closed, and it gave up.
        assert split.metrics.totals().get("poll_latency_seconds_count", 0.0) == polls
        with pytest.raises(LeaseLost):
            await asyncio.wait_for(runs[0], 10)
        assert [(w.address, w.values) for w in room_sim.device(DEVICE).writes] == [(2, (True,))]
    finally:
        for stop in stops:
            stop.set()
        await asyncio.gather(*runs, return_exceptions=True)
        await relay.close()
