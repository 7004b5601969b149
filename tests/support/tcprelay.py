"""A TCP relay in front of a real server that can cut the network silently (a partition): while frozen it
reads nothing through and closes nothing, as a dead link between a client and the broker would."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field


@dataclass
class TcpRelay:
    upstream_host: str
    upstream_port: int
    port: int = 0
    _server: asyncio.Server | None = None
    _open: asyncio.Event = field(default_factory=asyncio.Event)  # set: the link works
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        self._open.set()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def freeze(self) -> None:
        """Cut the link: bytes in flight either way are held back, nothing is closed."""
        self._open.clear()

    def thaw(self) -> None:
        """The link works again: what was held back goes through, in order."""
        self._open.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        self._writers += [writer, up_writer]
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await src.read(65536):
                await self._open.wait()  # frozen: hold the bytes, as a dead network would
                dst.write(data)
                await dst.drain()
        dst.close()
