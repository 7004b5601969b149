"""bcc_common.sdnotify against real datagram sockets (the services' use: tests/deploy/test_readiness.py)."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import pytest

from bcc_common.sdnotify import notify


def receiver(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(5)
    return sock


def test_no_service_manager_means_nothing_to_do() -> None:
    assert notify("READY=1", env={}) is False


def test_path_socket(tmp_path: Path) -> None:
    path = tmp_path / "n.sock"
    with receiver(str(path)) as sock:
        assert notify("READY=1\nSTATUS=up", env={"NOTIFY_SOCKET": str(path)}) is True
        assert sock.recv(4096) == b"READY=1\nSTATUS=up"


def test_abstract_socket() -> None:
    name = f"bcc-test-{uuid.uuid4().hex}"
    with receiver("\0" + name) as sock:
        assert notify("STOPPING=1", env={"NOTIFY_SOCKET": "@" + name}) is True
        assert sock.recv(4096) == b"STOPPING=1"


def test_a_socket_that_is_not_there_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        notify("READY=1", env={"NOTIFY_SOCKET": str(tmp_path / "missing.sock")})
    with pytest.raises(OSError, match="neither a path nor an abstract socket"):
        notify("READY=1", env={"NOTIFY_SOCKET": "relative.sock"})
