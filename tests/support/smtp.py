"""A real SMTP server (aiosmtpd) on a free loopback port that keeps what it receives."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller

from bcc_common.net import free_port


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.arrived = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd handler API
        with self.arrived:
            self.messages.append(message_from_bytes(envelope.content))
            self.arrived.notify_all()
        return "250 OK"

    def wait(self, count: int, timeout: float = 10.0) -> list[Message]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.messages) >= count, timeout), self.messages
            return list(self.messages)


@contextlib.contextmanager
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    """The inbox and the port it listens on."""
    box = Inbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


def text_of(message: Message) -> str:
    """The decoded text of a one-part e-mail."""
    raw = message.get_payload(decode=True)
    return raw.decode() if isinstance(raw, bytes) else str(message.get_payload())
