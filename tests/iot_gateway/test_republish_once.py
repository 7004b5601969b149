"""On a (re)connect the gateway republishes each device's last state once, and only where the new
connection does not carry it already.

Found in the 1,500-device benchmark: devices poll while the gateway announces itself after a connect
(discovery for every device first), and the announcement then published the state each of them had
just polled a second time: 1,131 repeated states, counted as delivered. The full-size effect is in
``bcc bench poll``; the reduced-scale run (test_rtu_and_scale.py) also checks that no state arrives
twice. Here the rule itself, on a real device runner fed through its own ``update``.
"""

from __future__ import annotations

from bcc_contract.topics import Topics
from devices.loader import site_from_dict
from iot_gateway.device import DeviceRunner
from iot_gateway.hub import BusHub
from iot_gateway.metrics import GatewayMetrics
from simulators import synthetic

TOPICS = Topics()


def runner(posted: list[tuple[str, bytes]]) -> DeviceRunner:
    loaded = site_from_dict(synthetic.site_dict(1, [1502]), {"synthetic": synthetic.profile(3)})
    inst = loaded.site.devices[0]
    return DeviceRunner(
        inst,
        loaded.profile_of(inst),
        BusHub(loaded.site.bus(inst.bus)),  # never connected: nothing is read here
        loaded.site.gateway,
        TOPICS,
        lambda topic, payload, _at_once: posted.append((topic, payload)),
        GatewayMetrics(),
    )


def states(posted: list[tuple[str, bytes]], device: str) -> list[bytes]:
    return [p for t, p in posted if t == TOPICS.state(device)]


def test_a_state_polled_after_the_connect_is_not_republished() -> None:
    posted: list[tuple[str, bytes]] = []
    dev = runner(posted)
    dev.update({"tag_000": 1, "tag_001": 2, "tag_002": 3}, ts=1000.0)  # polled after the connect at 999
    assert len(states(posted, dev.id)) == 1
    dev.republish(since=999.0)
    assert len(states(posted, dev.id)) == 1, "the connection already carries this state"


def test_a_state_from_an_earlier_connection_is_republished_as_it_was() -> None:
    posted: list[tuple[str, bytes]] = []
    dev = runner(posted)
    dev.update({"tag_000": 1, "tag_001": 2, "tag_002": 3}, ts=1000.0)
    dev.republish(since=1005.0)  # reconnected later: the broker may have lost the retained state
    first, again = states(posted, dev.id)
    assert again == first  # the device's last reported values and their poll time, not a new reading


def test_availability_is_republished_on_every_connect() -> None:
    posted: list[tuple[str, bytes]] = []
    dev = runner(posted)
    dev.available = True
    dev.republish(since=0.0)
    assert (TOPICS.availability(dev.id), b"online") in posted
