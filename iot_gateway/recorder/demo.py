"""Recorder for ``bcc demo``: a throwaway influxd (when installed) and an in-process recorder.

``bcc.demo`` calls :func:`start_demo_recorder` after the broker and gateway are up and awaits
``DemoRecorder.stop()`` on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from devices.loader import LoadedSite
from devices.site import MqttSettings
from iot_gateway.recorder.config import InfluxSettings, RecorderConfig, build_config
from iot_gateway.recorder.influxd import InfluxdProcess, find_influxd
from iot_gateway.recorder.service import Recorder

GRAFANA_DIR = Path(__file__).resolve().parents[2] / "grafana"


@dataclass
class DemoRecorder:
    influxd: InfluxdProcess
    recorder: Recorder
    task: asyncio.Task[None]
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)

    def instructions(self) -> list[str]:
        prov = GRAFANA_DIR / "provisioning"
        return [
            f"InfluxDB:   {self.influxd.url} (database {self.recorder.config.influx.database}, "
            "throwaway data)",
            f"Grafana:    point a Grafana >= 10 at {prov} (paths.provisioning) with",
            f"            BCC_INFLUX_URL={self.influxd.url}",
            f"            BCC_GRAFANA_DASHBOARDS={GRAFANA_DIR / 'dashboards'} (see docs/grafana.md)",
        ]

    async def stop(self) -> None:
        self.stop_event.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.task, 10)
        await self.influxd.stop()


async def start_demo_recorder(
    loaded: LoadedSite, mqtt: MqttSettings, recorder_password: str, workdir: Path
) -> DemoRecorder | None:
    """Start influxd in ``workdir/influxdb`` and a recorder; None when influxd is not installed.

    ``mqtt`` is the site's MQTT settings as the demo rewrote them (broker URL, protocol); the recorder
    logs in as ``recorder`` with ``recorder_password``.
    """
    if find_influxd() is None:
        return None
    influxd = InfluxdProcess(workdir / "influxdb")
    await influxd.start()
    raw = {"url": influxd.url, "spool_path": str(workdir / "recorder-spool.sqlite3"), "stats_interval_s": 5}
    site = loaded.site.model_copy(update={"mqtt": mqtt, "influxdb": InfluxSettings.model_validate(raw)})
    config: RecorderConfig = build_config(
        LoadedSite(site, loaded.profiles, loaded.path), {"BCC_MQTT_PASSWORD": recorder_password}, "<demo>"
    )
    recorder = Recorder(config)
    demo = DemoRecorder(influxd, recorder, asyncio.get_running_loop().create_future())  # type: ignore[arg-type]
    demo.task = asyncio.create_task(recorder.run(demo.stop_event))
    await asyncio.wait_for(recorder.intake.connected.wait(), 10)
    return demo
