"""What the service makes of odd input, without a broker: availability that is neither ``online`` nor
``offline`` (an empty retained message, garbage) changes nothing; a state that is not a JSON object is
ignored; commands are refused with their reason."""

from __future__ import annotations

import time
from pathlib import Path

from bcc_contract.topics import Topics
from devices.loader import DEMO_SITE, load_site
from iot_gateway.alarms.config import build_alarms_config
from iot_gateway.alarms.service import AlarmService
from tests.iot_gateway.alarms.test_service import fast_rules

T = Topics()


async def test_odd_inputs_change_nothing(tmp_path: Path) -> None:
    loaded = load_site(DEMO_SITE)
    env = {"BCC_MQTT_PASSWORD": "alarms-secret-0123"}
    service = AlarmService(
        build_alarms_config(loaded, env, fast_rules(tmp_path), tmp_path / "s.db", instance="t")
    )
    try:
        await service._check_lease(time.time())
        assert service.active
        for payload in (b"", b"maybe", b"OFFLINE"):
            await service.handle(T.availability("wall"), payload, retained=True)
            await service.handle(T.bridge_state(loaded.site.gateway_id), payload, retained=True)
        for payload in (b"[1, 2]", b"not json", b'"text"'):
            await service.handle(T.state("env_front"), payload, retained=False)
        later = time.time() + 3600
        assert service.evaluator.tick(later) == []
        assert {a.state.value for a in service.evaluator.alarms.values()} == {"normal"}
        await service.handle(T.availability("wall"), b"offline", retained=True)
        assert [e.alarm for e in service.evaluator.tick(later)] == ["device_offline.wall"]
    finally:
        service.store.close()
