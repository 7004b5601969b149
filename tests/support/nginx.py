"""nginx with the shipped portal site (deploy/nginx/bcc-portal.conf) in a test's folder: a self-signed
certificate, a minimal nginx.conf around the site, ``nginx -t``; no root-owned paths."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.paths import ROOT

SITE = ROOT / "deploy" / "nginx" / "bcc-portal.conf"
HOST = "portal.example.go.id"  # the site's placeholder server_name
CERT, KEY = "/etc/bcc/tls/portal.crt", "/etc/bcc/tls/portal.key"  # where the site expects them


def nginx_binary() -> str:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        pytest.fail("nginx not installed: run scripts/sysdeps.sh (Debian package: nginx)")
    return binary


def self_signed(folder: Path) -> tuple[Path, Path]:
    """Certificate and key for HOST and 127.0.0.1 (so clients can verify it when connecting by address)."""
    cert, key = folder / "portal.crt", folder / "portal.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", str(key),
         "-out", str(cert), "-subj", f"/CN={HOST}", "-addext", f"subjectAltName=DNS:{HOST},IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def site_with_certificate(folder: Path) -> tuple[str, Path]:
    """The shipped site's text using a new self-signed certificate in ``folder``; and that certificate."""
    cert, key = self_signed(folder)
    text = SITE.read_text(encoding="utf-8")
    assert CERT in text and KEY in text
    return text.replace(CERT, str(cert)).replace(KEY, str(key)), cert


def nginx_test(prefix: Path, site_text: str, root_workers: bool = False) -> subprocess.CompletedProcess[str]:
    """``nginx -t`` on a minimal nginx.conf that includes ``site_text``, every path under ``prefix``
    (pid, logs and temp folders are the test's). ``root_workers``: when the test runs as root and will
    start nginx, its workers stay root to reach the test's private temp folders."""
    binary = nginx_binary()
    (prefix / "site.conf").write_text(site_text, encoding="utf-8")
    temp = "\n".join(
        f"  {kind}_temp_path {prefix}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (prefix / "nginx.conf").write_text(
        ("user root;\n" if root_workers and os.geteuid() == 0 else "")
        + f"pid {prefix}/nginx.pid;\nerror_log stderr;\nevents {{}}\n"
        f"http {{\n  access_log off;\n{temp}\n  include {prefix}/site.conf;\n}}\n",
        encoding="utf-8",
    )
    return subprocess.run(
        [binary, "-t", "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", "stderr"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
