"""A building behind a WAN as the center's broker sees it (docs/mqtt.md, "Buildings behind a WAN").

``center_broker``: the center's Mosquitto as ``bcc install`` writes it with ``bridges:`` (the packaged
ACL plus the bridge's own account and ACL block, mosquitto/bridge.py). ``BridgeLink``: a connection as
that account doing on the center what Mosquitto's bridge notifications do (``notifications true``): it
connects with ``0`` as its last will on ``<base>/bridge/<gateway>/link`` (retained, QoS 1) and publishes
``1`` there (retained). ``cut`` closes the connection without a DISCONNECT, so the center's broker
publishes the will, as it does when a WAN cut kills the bridge's connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from bcc.install_settings import bridge_account
from bcc_contract.fleet import LINK_DOWN, LINK_UP
from bcc_contract.topics import Topics
from devices.loader import LoadedSite
from mosquitto import DEFAULT_ACL, ROLES, MosquittoProcess, generate_demo_secrets
from mosquitto.accounts import render_acl
from mosquitto.bridge import bridge_acl
from tests.support.mqtt_probe import V311, Probe


def center_acl(workdir: Path, loaded: LoadedSite) -> Path:
    """The center's ACL file: the packaged one and the ACL block of ``loaded``'s bridge."""
    site = loaded.site
    devices = [d.id for d in site.devices]
    workdir.mkdir(parents=True, exist_ok=True)
    acl = workdir / "acl"
    acl.write_text(
        render_acl(DEFAULT_ACL.read_text(encoding="utf-8"))
        + bridge_acl(
            bridge_account(site.gateway_id), site.gateway_id, site.mqtt.base_topic, devices, site.site
        ),
        encoding="utf-8",
    )
    acl.chmod(0o600)
    return acl


@contextlib.asynccontextmanager
async def center_broker(workdir: Path, loaded: LoadedSite) -> AsyncIterator[MosquittoProcess]:
    """Mosquitto with every role's account and the bridge account of ``loaded``'s building."""
    account = bridge_account(loaded.site.gateway_id)
    credentials = {**generate_demo_secrets(ROLES), account: secrets.token_urlsafe(18)}
    acl = center_acl(workdir, loaded)
    async with MosquittoProcess(workdir / "mosquitto", credentials=credentials, acl_path=acl) as broker:
        yield broker


class BridgeLink:
    """The bridge of ``gateway``'s building, connected to (``up``) or cut from (``cut``) the center."""

    def __init__(self, center: MosquittoProcess, gateway: str, base: str = "bcc") -> None:
        self.center = center
        self.account = bridge_account(gateway)
        self.topic = Topics(base).bridge_link(gateway)
        self._probe: Probe | None = None

    async def up(self) -> None:
        """Connect with the will and say ``1`` (retained), as the bridge does on every connection."""
        assert self._probe is None, "already connected"
        c = self.center
        probe = Probe(c.host, c.port, self.account, c.password(self.account), V311, client_id=self.account)
        probe.client.will_set(self.topic, LINK_DOWN, qos=1, retain=True)
        assert (await probe.connect()).value == 0, "the bridge's account was refused"
        self._probe = probe
        assert (await probe.publish(self.topic, LINK_UP, retain=True)).value == 0

    async def cut(self) -> None:
        """Drop the connection without a DISCONNECT: the center's broker publishes the will (``0``)."""
        probe, self._probe = self._probe, None
        assert probe is not None, "not connected"
        await asyncio.to_thread(probe.client.loop_stop)
        probe.client._reset_sockets()  # closes the TCP connection; nothing is sent on it

    async def close(self) -> None:
        if self._probe is not None:
            await self._probe.close()
            self._probe = None
