"""The portal's start and stop: writer process, MQTT client and tasks, e-mail notifier, erasure job."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import structlog
from fastapi import FastAPI

from portal.mqtt import MqttEventSink
from portal.runtime import PortalRuntime
from portal.services import agency, deadlines
from portal.services.erasure import run_periodically
from portal.services.events import NullSink
from portal.services.notify import Notifier, NotifyingSink, SmtpSettings
from portal.services.scenes import run_schedules
from portal.services.sms import SmsSettings, TwilioSms

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
log = structlog.get_logger(__name__)


def make_lifespan(
    runtime: PortalRuntime, smtp: SmtpSettings | None, sms: SmsSettings | None = None
) -> Lifespan:
    """The app's lifespan; ``smtp`` enables e-mail notifications, ``sms`` SMS notifications through the
    provider (portal/services/notify.py, portal/services/sms.py)."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        runtime.room.attach(asyncio.get_running_loop())
        if (year := deadlines.missing_decree(runtime.clock().astimezone(deadlines.WIB).date())) is not None:
            log.warning("holiday_decree_missing", year=year, file=str(deadlines.HOLIDAYS_FILE))
        await asyncio.to_thread(runtime.report_writer.start)  # the writer process (report_writer.py)
        backlog, schedules = _connect_mqtt(runtime)
        notifier = _start_notifier(runtime, smtp, sms)
        settings, stop_jobs = runtime.settings, asyncio.Event()
        erasure = asyncio.create_task(
            run_periodically(
                runtime.sessions,
                runtime.clock,
                settings.erase_contact_days,
                settings.erase_check_s,
                stop_jobs,
            ),
            name="portal-erasure",
        )
        agency_jobs = _start_agency_jobs(runtime, notifier, stop_jobs)
        try:
            yield
        finally:
            stop_jobs.set()
            if agency_jobs is not None:
                await agency_jobs
            if notifier is not None:
                await asyncio.to_thread(notifier.stop)
                if isinstance(notifier.sms, TwilioSms):
                    notifier.sms.close()
                events = runtime.connections.events
                assert isinstance(events, NotifyingSink)
                runtime.connections.events = events.inner
            await runtime.report_writer.close()
            await erasure  # lets a run in progress finish (not cancelled: its thread holds a connection)
            for running in (schedules, *runtime.scene_tasks):
                await _cancel(running)
            if backlog is not None:
                await _cancel(backlog)
                _disconnect_mqtt(runtime)
            runtime.engine.dispose()

    return lifespan


def _connect_mqtt(runtime: PortalRuntime) -> tuple[asyncio.Task[None] | None, asyncio.Task[None] | None]:
    """Start the MQTT client (when the portal has a broker) with its backlog and schedule tasks."""
    settings = runtime.settings
    if settings.mqtt is None:
        return None, None
    sink = MqttEventSink(settings.mqtt, room=runtime.room)
    sink.start()
    runtime.connections.events = sink
    runtime.connections.commands = sink
    backlog = asyncio.create_task(sink.run_backlog(runtime.sessions, runtime.clock), name="portal-backlog")
    schedules = asyncio.create_task(
        run_schedules(
            runtime.scenes,
            runtime.room,
            sink,
            runtime.sessions,
            runtime.clock,
            settings.schedule_check_s,
            settings.schedule_grace_s,
        ),
        name="portal-schedules",
    )
    return backlog, schedules


def _disconnect_mqtt(runtime: PortalRuntime) -> None:
    sink = runtime.connections.commands
    assert sink is not None
    sink.stop()
    runtime.connections.events = NullSink()
    runtime.connections.commands = None


def _start_agency_jobs(
    runtime: PortalRuntime, notifier: Notifier | None, stop: asyncio.Event
) -> asyncio.Task[None] | None:
    """With e-mail: the agencies' deadline check (escalations to the heads, the officers' daily digest)."""
    if notifier is None or notifier.smtp is None:  # an SMS-only portal has no one to e-mail them to
        return None
    settings = runtime.settings
    jobs = agency.AgencyJobs(
        runtime.sessions, runtime.reference, runtime.clock, settings.public_url, settings.agency_digest_at
    )
    check = agency.run_periodically(jobs, settings.agency_check_s, notifier.wake, stop)
    return asyncio.create_task(check, name="portal-agency")


def _start_notifier(
    runtime: PortalRuntime, smtp: SmtpSettings | None, sms: SmsSettings | None
) -> Notifier | None:
    notifier: Notifier | None = None
    if smtp is not None or sms is not None:
        provider = TwilioSms(sms) if sms is not None else None
        attempts = smtp.attempts if smtp is not None else sms.attempts if sms is not None else None
        notifier = Notifier(
            smtp, runtime.sessions, runtime.settings.public_url, sms=provider, attempts=attempts
        )
        notifier.start()
        runtime.connections.events = NotifyingSink(runtime.connections.events, notifier)
    runtime.connections.notifier = notifier
    return notifier


async def _cancel(task: asyncio.Task[Any] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
