"""The portal in ``make demo``: a seeded SQLite database, generated logins, uvicorn on a free port.

``bcc.demo`` calls :func:`start_demo_portal` inside its event loop and prints ``url`` and ``logins``;
``await portal.stop()`` shuts it down. Every password is generated per run (none is fixed anywhere).
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvicorn

from portal.config import PortalMqttSettings, Settings
from portal.db import make_engine, session_factory, upgrade
from portal.main import create_app
from portal.reference import load_reference
from portal.services import proposals, reports, users, workflow
from portal.services.events import NullSink

# (category, kelurahan, title, description, privacy, how far along, days ago)
EXAMPLES = [
    (
        "perencanaan_pembangunan",
        "tangsi",
        "Drainase tersumbat di Jl. Sudirman",
        "Air meluap ke jalan setiap hujan deras.",
        "public",
        "closed_direct",
        20,
    ),
    (
        "kesehatan",
        "kartini",
        "Antrean puskesmas sangat panjang",
        "Pasien menunggu lebih dari tiga jam.",
        "anonymous",
        "responded",
        6,
    ),
    (
        "perizinan",
        "jati_makmur",
        "Izin usaha belum terbit",
        "Sudah dua bulan sejak berkas lengkap.",
        "public",
        "dispatched",
        4,
    ),
    (
        "anggaran",
        "binjai_estate",
        "Rincian anggaran taman kota",
        "Mohon informasi anggaran revitalisasi taman.",
        "public",
        "closed_budget",
        30,
    ),
    (
        "pengaduan_umum",
        "mencirim",
        "Lampu jalan mati",
        "Tiga lampu jalan mati sejak minggu lalu.",
        "public",
        "verified",
        2,
    ),
    (
        "kesehatan",
        "paya_roba",
        "Obat di apotek puskesmas kosong",
        "Stok obat hipertensi habis.",
        "confidential",
        "submitted",
        5,
    ),
    (
        "perencanaan_pembangunan",
        "tanah_tinggi",
        "Jalan berlubang dekat sekolah",
        "Berbahaya untuk anak-anak yang bersepeda.",
        "public",
        "submitted",
        0,
    ),
]

# Development proposals, each from a report closed as needs_budget, walked through the planning cycle so
# that a newcomer sees the flow on /usulan: (category, kelurahan, title, description, stages in order,
# estimated cost, amount funded, days ago).
PROPOSALS: list[tuple[str, str, str, str, tuple[str, ...], int | None, int | None, int]] = [
    (
        "perencanaan_pembangunan",
        "jati_karya",
        "Drainase Jl. Jati Karya meluap setiap hujan",
        "Saluran terlalu kecil, air masuk ke rumah warga.",
        ("musrenbang_kelurahan", "musrenbang_kecamatan"),
        350_000_000,
        None,
        60,
    ),
    (
        "perencanaan_pembangunan",
        "damai",
        "Jalan lingkungan rusak di Kelurahan Damai",
        "Aspal terkelupas sepanjang 400 meter.",
        proposals.STAGES[1 : proposals.STAGES.index("apbd") + 1],  # up to the enacted budget
        850_000_000,
        800_000_000,
        300,
    ),
    (
        "kesehatan",
        "paya_roba",
        "Ruang tunggu puskesmas pembantu terlalu sempit",
        "Pasien menunggu di luar saat hujan.",
        ("musrenbang_kelurahan", "deferred"),
        275_000_000,
        None,
        120,
    ),
    (
        "perencanaan_pembangunan",
        "tangsi",
        "Penerangan jalan Jl. Samanhudi",
        "Jalan gelap di malam hari.",
        proposals.STAGES[1:],  # the whole cycle, done
        120_000_000,
        120_000_000,
        400,
    ),
]


@dataclass
class DemoPortal:
    url: str
    logins: dict[str, tuple[str, str]]  # role label -> (username, password)
    server: uvicorn.Server
    task: asyncio.Task[None]
    open311_api_key: str = field(repr=False, default="")

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 10)


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def seed(settings: Settings, now: datetime) -> dict[str, tuple[str, str]]:
    """Two admins, an operator, one officer per agency, the health agency's head, a viewer, and example
    reports in various states."""
    ref = load_reference()
    engine = make_engine(settings.database_url)
    upgrade(engine)
    logins: dict[str, tuple[str, str]] = {}
    policy = reports.PhotoPolicy(settings.media_dir, settings.max_photo_bytes, settings.max_photos)
    sink = NullSink()
    with session_factory(engine)() as db:
        accounts: list[tuple[str, str, str, str | None]] = [
            ("admin 1", "admin.satu", "admin", None),
            ("admin 2", "admin.dua", "admin", None),
            ("operator", "operator.ruang", "operator", None),  # the operator console (/konsol)
            ("viewer", "pimpinan", "viewer", None),
        ]
        accounts += [(f"agency {a}", f"petugas.{a}", "agency", a) for a in ref.agencies]
        # the health agency's head: its page (/staf/dinas/<agency>) and the deadline escalations' addressee
        head = ref.categories["kesehatan"].agency
        accounts.append((f"agency head {head}", f"kadis.{head}", "kepala_dinas", head))
        for label, username, role, agency in accounts:
            password = secrets.token_urlsafe(12)
            users.create_user(db, ref, username, role, password, now, agency=agency)
            logins[label] = (username, password)
        admin = users.authenticate(db, "admin.satu", logins["admin 1"][1])
        officer = {a: users.authenticate(db, f"petugas.{a}", logins[f"agency {a}"][1]) for a in ref.agencies}
        assert admin is not None
        for category, kel, title, text, privacy, stage, days in EXAMPLES:
            t0 = now - timedelta(days=days)
            inp = reports.ReportInput(
                category=category, title=title, description=text, kelurahan=kel, privacy=privacy
            )
            r = reports.create_report(db, ref, inp, [], policy, sink, t0)
            if stage == "submitted":
                continue
            workflow.verify(db, admin, r.id, sink, t0 + timedelta(hours=5))
            if stage == "verified":
                continue
            workflow.dispatch(db, ref, admin, r.id, "", "", sink, t0 + timedelta(hours=6))
            if stage == "dispatched":
                continue
            agency_user = officer[ref.categories[category].agency]
            assert agency_user is not None
            workflow.respond(
                db, ref, agency_user, r.id, "Sedang kami tindak lanjuti.", sink, t0 + timedelta(days=1)
            )
            if stage.startswith("closed"):
                resolution = "resolved_direct" if stage == "closed_direct" else "needs_budget"
                workflow.close(db, admin, r.id, resolution, "", "", sink, t0 + timedelta(days=2))
                if stage == "closed_direct":  # the reporter confirms (the evaluation counts it)
                    reports.give_feedback(db, r.code, "solved", "Terima kasih.", t0 + timedelta(days=3))
        bappeda = officer["bappeda"]
        assert bappeda is not None
        for category, kel, title, text, stages, cost, funded, days in PROPOSALS:
            t0 = now - timedelta(days=days)
            inp = reports.ReportInput(category=category, title=title, description=text, kelurahan=kel)
            r = reports.create_report(db, ref, inp, [], policy, sink, t0)
            workflow.verify(db, admin, r.id, sink, t0 + timedelta(hours=5))
            workflow.close(db, admin, r.id, "needs_budget", "", "", sink, t0 + timedelta(days=1), ref=ref)
            found = proposals.of_report(db, r.id)
            assert found is not None
            pid, year = found.id, found.budget_year
            if cost is not None:
                estimator = officer[ref.categories[category].agency]
                assert estimator is not None
                at = t0 + timedelta(days=2)
                proposals.estimate(
                    db, ref, estimator, pid, str(cost), "", at, ceiling=settings.proposal_cost_ceiling
                )
            for i, stage in enumerate(stages):
                proposals.move(
                    db,
                    ref,
                    bappeda,
                    pid,
                    stage,
                    "Anggaran tahun ini sudah penuh." if stage == "deferred" else "",
                    sink,
                    t0 + timedelta(days=3 + i * (days - 3) // len(stages)),
                    ceiling=settings.proposal_cost_ceiling,
                    funded=str(funded or ""),
                    budget_year=str(year + 1),
                )
    engine.dispose()
    return logins


async def start_demo_portal(
    workdir: Path, mqtt: PortalMqttSettings | None = None, host: str = "127.0.0.1", port: int = 0
) -> DemoPortal:
    """Seed ``workdir/portal.db`` and serve the portal; returns its URL and the generated logins."""
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    api_key = secrets.token_urlsafe(24)
    port = port or _free_port(host)
    settings = Settings(
        database_url=f"sqlite:///{workdir / 'portal.db'}",
        secret_key=secrets.token_hex(32),
        media_dir=workdir / "media",
        cookie_secure=False,  # the demo is plain HTTP on loopback; production sits behind TLS
        open311_api_keys=(api_key,),
        public_url=f"http://{host}:{port}",
        mqtt=mqtt,
    )
    logins = await asyncio.to_thread(seed, settings, datetime.now(UTC))
    config = uvicorn.Config(
        create_app(settings), host=host, port=port, log_level="warning", server_header=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(), name="demo-portal")
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    return DemoPortal(f"http://{host}:{port}", logins, server, task, api_key)
