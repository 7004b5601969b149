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


@dataclass(frozen=True)
class DemoRecorder:
    """The demo's influxd and the recorder task writing into it."""

    influxd: InfluxdProcess
    recorder: Recorder
    task: asyncio.Task[None]
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)

    def instructions(self) -> list[str]:
        return [
            f"InfluxDB:   {self.influxd.url} (database {self.recorder.config.influx.database}, "
            "throwaway data)"
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
    demo: DemoRecorder | None = None
    try:
        raw = {
            "url": influxd.url,
            "spool_path": str(workdir / "recorder-spool.sqlite3"),
            "stats_interval_s": 5,
        }
        site = loaded.site.model_copy(update={"mqtt": mqtt, "influxdb": InfluxSettings.model_validate(raw)})
        config: RecorderConfig = build_config(
            LoadedSite(site, loaded.profiles, loaded.path), {"BCC_MQTT_PASSWORD": recorder_password}, "<demo>"
        )
        recorder = Recorder(config)
        stop_event = asyncio.Event()
        task = asyncio.create_task(recorder.run(stop_event))
        demo = DemoRecorder(influxd, recorder, task, stop_event)
        await asyncio.wait_for(recorder.intake.connected.wait(), 10)
    except BaseException:
        # The caller only learns of influxd from our return value: stop it here or it outlives the demo.
        await (demo.stop() if demo is not None else influxd.stop())
        raise
    return demo
