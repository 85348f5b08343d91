"""An HTTP proxy on 127.0.0.1 in front of any HTTP server that injects faults: error statuses,
slow answers, reset connections, answers cut short, a flipped byte in a request body, or an
outage. Every request gets a connection of its own (``Connection: close`` to the client), so
a fault never lands on a connection the client reuses, and each request is counted once."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import io
import socket
import ssl as ssl_module
import struct
import threading
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

from ._proc import ThreadedProxy

__all__ = ["Fault", "FaultProxy"]

FaultKind = Literal["status", "delay", "reset", "cut", "corrupt"]
_LINGER = 30.0  # seconds to wait for the rest of a request body already answered


@dataclass
class Fault:
    """What to do to the next ``count`` matching requests (every one when ``count`` < 1)."""

    kind: FaultKind
    count: int = 1
    status: int = 503
    delay: float = 0.0
    method: str | None = None
    path_contains: str | None = None
    after: int = 0
    used: int = field(default=0, compare=False)

    def matches(self, method: str, path: str, body_size: int) -> bool:
        return (
            not 0 < self.count <= self.used
            and (not self.method or self.method.upper() == method)
            and (self.path_contains or "") in path
            and (self.kind != "corrupt" or body_size > 0)  # only bodies can be corrupted
        )


class FaultProxy(ThreadedProxy):
    """A :class:`ThreadedProxy` for HTTP: ``inject(kind, ...)`` arms a fault; ``down()`` refuses
    connections and breaks those in flight until ``up()``. ``peak_live`` counts requests from
    arrival to the server's answer head, not connections: a client that has read a whole answer
    may send its next request before this proxy sees the end."""

    def __init__(self, target: str, *, ssl: ssl_module.SSLContext | None = None) -> None:
        super().__init__(target, ssl=ssl)
        self.injected: Counter[str] = Counter()  # faults applied, by kind
        self.seen: list[tuple[str, str, str]] = []  # (method, path, fault kind or "forwarded")
        self.bytes_received = 0  # of the server's answers, passed on to clients
        self.answered: list[tuple[str, str, int]] = []  # (method, path, status) from the server
        self.peak_live = 0  # the most requests in flight at once
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._live: set[asyncio.StreamWriter] = set()
        self._waiting: set[asyncio.StreamWriter] = set()  # requests not answered yet

    # -- control (from any thread) -------------------------------------------------------------
    def inject(
        self,
        kind: FaultKind,
        *,
        count: int = 1,
        status: int = 503,
        delay: float = 0.0,
        method: str | None = None,
        path_contains: str | None = None,
        after: int = 0,
    ) -> Fault:
        """Arm a fault: ``status`` (answer ``status`` without asking the server), ``delay``
        (wait ``delay`` s, then forward), ``reset`` (drop the connection with an RST), ``cut``
        (forward the server's answer head and ``after`` bytes of its body, then close the
        connection) or ``corrupt`` (flip one byte in the middle of the request body)."""
        fault = Fault(kind, count, status, delay, method, path_contains, after)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._faults.clear()

    def down(self) -> None:
        """An outage: stop listening (connections are refused) and reset live connections."""
        self._call(self._close())

    def up(self) -> None:
        """End the outage: listen again on the same port."""
        self._call(self._listen())

    @property
    def requests(self) -> int:
        """Requests seen so far."""
        return len(self.seen)

    # -- serving -------------------------------------------------------------------------------
    async def _close(self) -> None:
        await super()._close()
        for writer in list(self._live):
            _reset(writer)

    def _take(self, method: str, path: str, body_size: int) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path, body_size):
                    fault.used += 1
                    self.injected[fault.kind] += 1
                    return fault
        return None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._live.add(writer)
        try:
            await self._serve_one(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            _reset(writer)
        except asyncio.CancelledError:  # stopping: returning spares asyncio's callback a trace
            _reset(writer)
        finally:
            self._live.discard(writer)
            self._waiting.discard(writer)
            with contextlib.suppress(OSError, RuntimeError):
                writer.close()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, _, rest = head.partition(b"\r\n")
        method, path = request_line.decode("latin-1").split(" ")[:2]
        headers = http.client.parse_headers(io.BytesIO(rest))
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        size = int(headers.get("content-length", "0") or 0)
        fault = self._take(method, path, size)
        what = fault.kind if fault else "forwarded"
        self.seen.append((method, path, what))
        self._waiting.add(writer)
        self.peak_live = max(self.peak_live, len(self._waiting))
        if fault is not None and fault.kind == "delay":
            await asyncio.sleep(fault.delay)
        if fault is not None and fault.kind == "reset":
            _reset(writer)
            return
        if fault is not None and fault.kind == "status":
            await _drain_body(reader, size, chunked)
            _answer(writer, method, fault.status)
            await writer.drain()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            _reset(writer)  # the server is down: the client sees what it would see directly
            return
        try:
            up_writer.write(_rewrite_head(head, close=False))
            flip = size // 2 if fault is not None and fault.kind == "corrupt" else -1
            upload = asyncio.ensure_future(_pipe_body(reader, up_writer, size, chunked, flip))
            response = await up_reader.readuntil(b"\r\n\r\n")
            while response.startswith(b"HTTP/1.1 1"):  # 100 Continue: the final answer follows
                writer.write(response)
                response = await up_reader.readuntil(b"\r\n\r\n")
            status = int(response.split(b" ", 2)[1])
            self.answered.append((method, path, status))
            self._waiting.discard(writer)
            writer.write(_rewrite_head(response))
            left = fault.after if fault is not None and fault.kind == "cut" else None
            async with contextlib.aclosing(
                _answer_body(up_reader, method, status, response)
            ) as body:
                async for data in body:
                    data = data if left is None else data[:left]
                    self.bytes_received += len(data)
                    writer.write(data)
                    await writer.drain()
                    if left is not None and (left := left - len(data)) == 0:
                        break
            if left is None and not chunked:
                # The server may answer before it has read the body (a 404 for a missing
                # container); it reads the rest on a connection kept alive, so wait for it.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(upload), _LINGER)
            upload.cancel()  # (a cut answer: the connection closes here, short of its length)
        finally:
            up_writer.close()


def _rewrite_head(head: bytes, *, close: bool = True) -> bytes:
    """The head without its connection headers, with ``Connection: close`` (to the client: one
    request per connection) or without (to the server: kept alive, so that a server answering
    before it has read a request body still reads the rest rather than resetting the proxy;
    Ceph RGW does, given ``Connection: close``)."""
    lines = head.decode("latin-1").split("\r\n")
    kept = [ln for ln in lines if ln and not ln.lower().startswith(("connection:", "keep-alive:"))]
    kept += ["Connection: close"] if close else []
    return ("\r\n".join(kept) + "\r\n\r\n").encode("latin-1")


async def _answer_body(
    reader: asyncio.StreamReader, method: str, status: int, head: bytes
) -> AsyncIterator[bytes]:
    """The raw bytes of the answer's body (chunk framing included), as HTTP/1.1 delimits it:
    none, ``Content-Length`` bytes, chunks up to the last, or up to the server's close."""
    if method == "HEAD" or status in (204, 304):
        return
    headers = http.client.parse_headers(io.BytesIO(head.partition(b"\r\n")[2]))
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while line := await reader.readline():
            yield line
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (trailer := await reader.readline()) and trailer.strip():
                    yield trailer
                yield trailer
                return
            async for data in _exactly(reader, size + 2):
                yield data
        return
    length = headers.get("content-length")
    async for data in _exactly(reader, int(length) if length is not None else -1):
        yield data


async def _exactly(reader: asyncio.StreamReader, size: int) -> AsyncIterator[bytes]:
    """``size`` bytes in pieces (all up to the close when ``size`` < 0; fewer if it comes first)."""
    while size != 0 and (data := await reader.read(1 << 16 if size < 0 else min(size, 1 << 16))):
        size -= len(data) if size > 0 else 0
        yield data


async def _pipe_body(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, size: int, chunked: bool, flip: int
) -> None:
    """Copy the request body on (``flip`` >= 0: with that byte inverted); a chunked body until
    the answer is complete. Once the server stops taking it, the rest is read and dropped."""
    if chunked:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(1 << 16):
                writer.write(data)
                await writer.drain()
        return
    sent = 0
    forwarding = True
    with contextlib.suppress(ConnectionError):  # the client's: it is gone, nothing to copy
        while sent < size:
            data = bytearray(await reader.read(min(1 << 16, size - sent)))
            if not data:
                return
            if 0 <= flip - sent < len(data):
                data[flip - sent] ^= 0xFF
            sent += len(data)
            if forwarding:
                try:
                    writer.write(data)
                    await writer.drain()
                except ConnectionError:  # the server's: the rest is read and dropped
                    forwarding = False


async def _drain_body(reader: asyncio.StreamReader, size: int, chunked: bool) -> None:
    if not chunked:
        await reader.readexactly(size)
        return
    while True:
        length = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
        if length == 0:
            while (await reader.readline()).strip():
                pass  # trailers
            return
        await reader.readexactly(length + 2)


def _answer(writer: asyncio.StreamWriter, method: str, status: int) -> None:
    # S3's error shape; Swift clients show the text of any body.
    code = {403: "AccessDenied", 503: "ServiceUnavailable"}.get(status, f"Injected{status}")
    body = f"<Error><Code>{code}</Code><Message>Injected fault {status}</Message></Error>".encode()
    head = (
        f"HTTP/1.1 {status} Injected Fault\r\nContent-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\nX-Injected-Fault: true\r\nConnection: close\r\n\r\n"
    )
    writer.write(head.encode() + (b"" if method == "HEAD" else body))


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST (SO_LINGER 0), as a crashed server's kernel would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
