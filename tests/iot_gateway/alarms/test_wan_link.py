"""The gateway_offline alarm of a building behind a WAN (docs/alarms.md), on a real Mosquitto set up as the
center with the building's bridge account (tests/support/bridge_link.py): the evaluator, through the
``alarms`` role's ACL, reads the bridge's link notification as well as the gateway's own state.

While the link is cut the gateway's retained state at the center still says ``online`` (its last will
lives on the building's broker), so only the link tells: ``0`` (the bridge's last will, retained)
raises the alarm with the value ``wan_link_down``, found at start as well as live; ``1`` clears it; the
gateway's own ``offline`` still raises it, with the value ``offline``.
"""

from __future__ import annotations

from pathlib import Path

from bcc_contract.topics import Topics
from devices.loader import DEMO_SITE, load_site, site_from_dict
from iot_gateway.alarms.config import build_alarms_config
from iot_gateway.alarms.service import running_alarms
from tests.iot_gateway.alarms.test_service import fast_rules
from tests.support.bridge_link import BridgeLink, center_broker
from tests.support.gateway import Probe, probe, site_dict

T = Topics()
ALARM = "gateway_offline.bridge"
WAIT_S = 8


async def raised(watch: Probe, since: int) -> dict[str, object]:
    found: dict[str, object] = await watch.wait_for(
        T.alarm_state(ALARM), lambda a: a["state"] == "active_unacked", WAIT_S, since=since
    )
    return found


async def cleared(watch: Probe, since: int) -> dict[str, object]:
    found: dict[str, object] = await watch.wait_for(
        T.alarm_state(ALARM), lambda a: not a["active"], WAIT_S, since=since
    )
    return found


async def test_the_wan_link_of_the_building_raises_and_clears_gateway_offline(tmp_path: Path) -> None:
    loaded = load_site(DEMO_SITE)
    gateway_id = loaded.site.gateway_id
    rules = fast_rules(tmp_path, gateway_offline={"on_delay_s": 0.5, "off_delay_s": 0.5})
    async with center_broker(tmp_path / "center", loaded) as center:
        site = site_from_dict(site_dict(loaded, center), loaded.profiles)
        env = {"BCC_MQTT_PASSWORD": center.password("alarms")}
        config = build_alarms_config(site, env, rules, tmp_path / "a.db", instance="center")
        link = BridgeLink(center, gateway_id)
        async with probe(center, "gateway", subscribe=None) as gw, probe(center, "operator") as watch:
            try:
                await gw.publish(T.bridge_state(gateway_id), "online", retain=True)
                await link.up()
                await link.cut()  # before the evaluator starts: the center holds the will, retained
                await watch.wait_for(T.bridge_link(gateway_id), lambda v: v == 0, WAIT_S)
                async with running_alarms(config):
                    alarm = await raised(watch, 0)
                    assert alarm["value"] == "wan_link_down" and alarm["severity"] == "critical"

                    mark = watch.mark()
                    await link.up()
                    alarm = await cleared(watch, mark)
                    assert alarm["state"] == "cleared_unacked" and alarm["value"] == "online"

                    mark = watch.mark()
                    await link.cut()  # live: the bridge's connection dies, the center says 0
                    alarm = await raised(watch, mark)
                    assert alarm["value"] == "wan_link_down"
                    assert watch.all(T.bridge_state(gateway_id), since=mark) == []  # still "online"

                    mark = watch.mark()
                    await link.up()
                    assert (await cleared(watch, mark))["value"] == "online"

                    mark = watch.mark()
                    await gw.publish(T.bridge_state(gateway_id), "offline", retain=True)
                    alarm = await raised(watch, mark)
                    assert alarm["value"] == "offline"
            finally:
                await link.close()
