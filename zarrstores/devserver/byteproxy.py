"""A TCP proxy in a thread that counts the bytes it carries each way (how much a query
really transfers: tests and benchmarks of the frame store)."""

from __future__ import annotations

import asyncio
import contextlib

from ._proc import ThreadedProxy

__all__ = ["ByteCountingProxy"]


class ByteCountingProxy(ThreadedProxy):
    """``received`` counts the bytes from the server to clients, ``sent`` those the other way."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.received = 0
        self.sent = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            self._pipe(reader, up_writer, upstream=True),
            self._pipe(up_reader, writer, upstream=False),
        )

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, upstream: bool
    ) -> None:
        try:
            with contextlib.suppress(OSError):  # a side closed or reset its connection
                while data := await reader.read(1 << 16):
                    if upstream:
                        self.sent += len(data)
                    else:
                        self.received += len(data)
                    writer.write(data)
                    await writer.drain()
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                writer.close()
