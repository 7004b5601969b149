"""The nginx site in front of the portal: ``nginx -t`` accepts it with a real (self-signed) certificate,
and its limits match the portal's."""

from __future__ import annotations

import re
from pathlib import Path

from portal.config import Settings
from tests.support.nginx import SITE, nginx_test, site_with_certificate


def test_nginx_accepts_the_site(tmp_path: Path) -> None:
    result = nginx_test(tmp_path, site_with_certificate(tmp_path)[0])
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_nginx_test_fails_on_a_broken_site(tmp_path: Path) -> None:
    """The check above can fail: a misspelled directive is refused."""
    text = site_with_certificate(tmp_path)[0].replace("proxy_buffering off;", "proxy_bufering off;")
    result = nginx_test(tmp_path, text)
    assert result.returncode != 0 and "proxy_bufering" in result.stderr


def _size(value: str) -> int:
    units = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
    m = re.fullmatch(r"(\d+)([kmg]?)", value.lower())
    assert m, value
    return int(m.group(1)) * units[m.group(2)]


def test_body_limit_is_the_portals() -> None:
    """nginx must pass every body the portal accepts and refuse every other one itself (the portal
    would answer 413 unread and close, which nginx reports as 502: tests/deploy/test_portal_unit.py)."""
    limit = _size(re.findall(r"client_max_body_size\s+(\w+);", SITE.read_text(encoding="utf-8"))[0])
    portal = Settings(secret_key="k" * 32).max_body_bytes
    assert portal == 3 * 5 * 1024 * 1024 + 256 * 1024 == limit


def test_site_has_the_production_settings() -> None:
    text = SITE.read_text(encoding="utf-8")
    assert "return 301 https://$host$request_uri;" in text
    assert re.search(r'add_header Strict-Transport-Security "max-age=\d{8,}" always;', text)
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in text
    assert "server_tokens off;" in text
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in text
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in text
    sse = text.split("location ~ ^/(konsol|dinding)/events$", 1)[1].split("}", 1)[0]
    assert "proxy_buffering off;" in sse and "proxy_read_timeout 1h;" in sse
    # a proxy_set_header inside the SSE location would drop the server-level forwarded headers
    assert "proxy_set_header" not in sse
    assert "server 127.0.0.1:8000;" in text
