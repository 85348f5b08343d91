"""A lean HTTP/1.1 client for many small requests to one server: keep-alive connections and
whole bodies in memory, nothing else.

Why: with zarr chunks of tens of KiB the client's CPU per request is the throughput (client
and server share the cores, and zarr's own work runs on the same event loop). A GET through
aiohttp costs ~200 us of CPU here, through this ~100 us. It does what the S3 client needs:
``Content-Length``, chunked and close-delimited bodies, HEAD, TLS, a bounded pool, a timeout
for a stalled request (not for a long one: a large body moving slowly is fine), one silent
retry when a reused keep-alive connection turns out closed. No proxies, redirects, cookies,
compression or streaming.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from yarl import URL

__all__ = ["HTTPConnectionError", "HTTPPool", "HTTPResponse", "TLSError", "call_on_loop"]

# Keep-alive connections idle longer than this are not reused (servers close theirs after
# 5-90 s; Go's net/http, which MinIO and SeaweedFS use, after its IdleTimeout).
IDLE_SECONDS = 15.0
_MAX_HEAD = 64 << 10
_SLICE = 1 << 20  # larger bodies are sent in slices of this, each one progress


class HTTPConnectionError(ConnectionError):
    """The connection failed, broke or answered something that is not HTTP/1.x."""


class TLSError(HTTPConnectionError):
    """The TLS handshake failed (certificate not trusted, wrong host name...)."""


@dataclass
class HTTPResponse:
    """Status, headers (names in lower case) and the whole body."""

    status: int
    headers: dict[str, str]
    body: bytes


class _Connection(asyncio.Protocol):
    """One keep-alive connection: sends a request, parses its response."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.used = 0
        self._waiter: asyncio.Future[HTTPResponse] | None = None
        self._head_only = False
        self._writable: asyncio.Future[None] | None = None
        self._last_progress = 0.0
        self._watchdog: asyncio.TimerHandle | None = None
        self._reset_parser()

    # -- asyncio callbacks ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.resume_writing()
        if self._waiter is not None and not self._waiter.done():
            if self._framing == "eof" and self._status:
                self._finish()  # the body ends with the connection
            else:
                why = f": {exc}" if exc else ""
                got = "before answering" if not self._received else "in the middle of an answer"
                self._waiter.set_exception(
                    HTTPConnectionError(f"the server closed the connection {got}{why}")
                )

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    def data_received(self, data: bytes) -> None:
        self._received = True
        self._last_progress = time.monotonic()
        if self._waiter is None or self._waiter.done():
            # Bytes nobody asked for: the connection is out of step, never reuse it.
            self.abort()
            return
        try:
            self._feed(data)
        except HTTPConnectionError as e:
            self._waiter.set_exception(e)
            self.abort()

    # -- use ----------------------------------------------------------------------------------
    async def send(self, head: bytes, body: bytes, head_only: bool, stall: float) -> HTTPResponse:
        """Send one request and return its answer; ``TimeoutError`` when nothing moves (no
        byte of the body taken, none of the answer received) for ``stall`` seconds."""
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self._reset_parser()
        self._head_only = head_only
        waiter = self._waiter = loop.create_future()
        self._last_progress = time.monotonic()
        self._watchdog = loop.call_later(stall, self._check_stall, stall)
        try:
            if len(body) <= 16 << 10:
                self.transport.write(head + body)
            elif len(body) <= _SLICE:
                # The transport sends it as the socket takes it, without a copy.
                self.transport.write(head)
                self.transport.write(body)
            else:
                self.transport.write(head)
                view = memoryview(body)
                for start in range(0, len(body), _SLICE):
                    if waiter.done():  # answered before all was sent (a refusal)
                        break
                    self.transport.write(view[start : start + _SLICE])
                    if self._writable is not None:
                        await asyncio.wait(
                            (self._writable, waiter), return_when=asyncio.FIRST_COMPLETED
                        )
                    self._last_progress = time.monotonic()
            return await waiter
        finally:
            self._watchdog.cancel()

    def _check_stall(self, stall: float) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        quiet = time.monotonic() - self._last_progress
        if quiet < stall:
            self._watchdog = asyncio.get_running_loop().call_later(
                stall - quiet, self._check_stall, stall
            )
            return
        waiter.set_exception(TimeoutError(f"nothing moved for {stall:g} s"))
        self.abort()

    @property
    def received(self) -> bool:
        """Whether any byte of the current response arrived."""
        return self._received

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            with contextlib.suppress(RuntimeError):  # its loop may be closed already
                self.transport.abort()

    # -- parsing ------------------------------------------------------------------------------
    def _reset_parser(self) -> None:
        self._buffer = bytearray()
        self._status = 0
        self._headers: dict[str, str] = {}
        self._framing = ""  # "length", "chunked", "eof" or "none"
        self._left = 0
        self._parts: list[bytes] = []
        self._chunk_state = "size"  # "size", "data", "crlf", "trailer"
        self._received = False
        self._keep_alive = False

    def _feed(self, data: bytes) -> None:
        if not self._status:
            self._buffer += data
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > _MAX_HEAD:
                    raise HTTPConnectionError("the response's headers are too long")
                return
            head, data = bytes(self._buffer[:end]), bytes(self._buffer[end + 4 :])
            self._buffer = bytearray()
            self._parse_head(head)
            if 100 <= self._status < 200:  # an interim answer: the real one follows
                self._status = 0
                if data:
                    self._feed(data)
                return
            if self._waiter is None:  # the head was the whole answer
                if data:
                    self._keep_alive = False  # and something else followed it
                return
        if self._framing == "length":
            take = data[: self._left]
            self._parts.append(take)
            self._left -= len(take)
            if len(data) > len(take):
                self._keep_alive = False  # more than announced: out of step
            if self._left == 0:
                self._finish()
        elif self._framing == "chunked":
            self._feed_chunked(data)
        elif self._framing == "eof":
            self._parts.append(data)

    def _parse_head(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise HTTPConnectionError(f"not an HTTP/1.x answer: {lines[0][:80]!r}")
        self._status = int(code)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                name = name.strip().lower()
                value = value.strip()
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
        self._headers = headers
        self._keep_alive = (
            version != "HTTP/1.0" and "close" not in headers.get("connection", "").lower()
        )
        if self._head_only or self._status in (204, 304) or self._status < 200:
            self._framing = "none"
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self._framing = "chunked"
        elif "content-length" in headers:
            try:
                self._left = int(headers["content-length"])
            except ValueError:
                raise HTTPConnectionError("the response's Content-Length is not a number") from None
            self._framing = "length"
        else:
            self._framing = "eof"
            self._keep_alive = False
        if self._status >= 200 and (
            self._framing == "none" or (self._framing == "length" and self._left == 0)
        ):
            self._finish()

    def _feed_chunked(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while True:
            if self._chunk_state == "data":
                take = bytes(buffer[: self._left])
                del buffer[: len(take)]
                self._parts.append(take)
                self._left -= len(take)
                if self._left:
                    return
                self._chunk_state = "crlf"
            line_end = buffer.find(b"\r\n")
            if line_end < 0:
                if len(buffer) > _MAX_HEAD:
                    raise HTTPConnectionError("a chunk header of the response is too long")
                return
            line = bytes(buffer[:line_end])
            del buffer[: line_end + 2]
            if self._chunk_state == "crlf":
                if line:
                    raise HTTPConnectionError("a chunk of the response does not end in CRLF")
                self._chunk_state = "size"
            elif self._chunk_state == "size":
                try:
                    self._left = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise HTTPConnectionError("a chunk size of the response is not hex") from None
                self._chunk_state = "trailer" if self._left == 0 else "data"
            elif not line:  # the empty line after the (ignored) trailers
                self._finish()
                return

    def _finish(self) -> None:
        waiter, self._waiter = self._waiter, None
        if self._buffer or (self.transport and self.transport.get_write_buffer_size()):
            self._keep_alive = False  # bytes after the answer, or answered before all was sent
        if waiter is not None and not waiter.done():
            waiter.set_result(HTTPResponse(self._status, self._headers, b"".join(self._parts)))

    @property
    def reusable(self) -> bool:
        return not self.closed and self._keep_alive and self._waiter is None


class HTTPPool:
    """Keep-alive HTTP/1.1 connections to one ``scheme://host:port``, at most ``limit`` at a
    time. ``timeout``: how long a request may stall (nothing sent, nothing received) before it
    fails; ``connect_timeout``: for opening a connection. Bound to the event loop it is first
    used on."""

    def __init__(
        self,
        scheme: str,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        limit: int = 64,
        timeout: float = 300.0,
        connect_timeout: float = 10.0,
    ) -> None:
        if scheme not in ("http", "https"):
            raise ValueError(f"unsupported URL scheme {scheme!r}: use http or https")
        self.scheme, self.host, self.port = scheme, host, port
        self.tls = tls if scheme == "https" else None
        if scheme == "https" and self.tls is None:
            self.tls = ssl.create_default_context()
        self.limit = limit
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._idle: list[_Connection] = []
        self._busy: set[_Connection] = set()
        self._slots: asyncio.Semaphore | None = None
        self._closed = False

    @classmethod
    def for_url(cls, url: str | URL, *, verify: bool | str = True, **options: Any) -> HTTPPool:
        """A pool for ``url``'s origin; ``verify``: check certificates (True), against a CA
        bundle (its path) or not at all (False). ``options`` as for the constructor."""
        url = URL(url)
        scheme = url.scheme
        tls = None
        if scheme == "https":
            tls = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
            if verify is False:
                tls.check_hostname = False
                tls.verify_mode = ssl.CERT_NONE
        port = url.port or (443 if scheme == "https" else 80)
        return cls(scheme, url.host or "", port, tls=tls, **options)

    async def request(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes = b""
    ) -> HTTPResponse:
        """Send ``method target`` (a path with its query, already encoded) and read the whole
        answer. Raises ``HTTPConnectionError`` (``TLSError``) or ``TimeoutError``."""
        if self._closed:
            raise HTTPConnectionError("the connection pool is closed")
        lines = [f"{method} {target} HTTP/1.1"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body or method in ("PUT", "POST"):
            lines.append(f"content-length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.limit)
        async with self._slots:
            fresh = False
            while True:
                conn = await self._connection(fresh=fresh)
                reused = conn.used > 0
                try:
                    response = await conn.send(head, body, method == "HEAD", self.timeout)
                except HTTPConnectionError:
                    conn.abort()
                    self._busy.discard(conn)
                    # A keep-alive connection the server closed meanwhile: once more, on a
                    # new connection (not on the next idle one, which may be just as stale).
                    if reused and not conn.received:
                        fresh = True
                        continue
                    raise
                except BaseException:  # cancelled, timed out: the connection is out of step
                    conn.abort()
                    self._busy.discard(conn)
                    raise
                self._busy.discard(conn)
                conn.used += 1
                if conn.reusable and not self._closed:
                    conn.idle_since = time.monotonic()
                    self._idle.append(conn)
                else:
                    conn.abort()
                return response

    async def _connection(self, *, fresh: bool = False) -> _Connection:
        now = time.monotonic()
        while self._idle and not fresh:
            conn = self._idle.pop()
            if conn.reusable and now - conn.idle_since < IDLE_SECONDS:
                self._busy.add(conn)
                return conn
            conn.abort()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(
                    _Connection,
                    self.host,
                    self.port,
                    ssl=self.tls,
                    server_hostname=self.host if self.tls else None,
                )
        except ssl.SSLError as e:
            raise TLSError(f"TLS handshake with {self.host}:{self.port} failed: {e}") from None
        except TimeoutError:
            raise HTTPConnectionError(
                f"connecting to {self.host}:{self.port} took over {self.connect_timeout:g} s"
            ) from None
        except OSError as e:
            raise HTTPConnectionError(f"cannot connect to {self.host}:{self.port}: {e}") from None
        self._busy.add(conn)
        return conn

    def close_now(self) -> None:
        """Close every connection without waiting (also from a finalizer)."""
        self._closed = True
        for conn in [*self._idle, *self._busy]:
            conn.abort()
        self._idle.clear()
        self._busy.clear()

    async def close(self) -> None:
        """Close every connection."""
        self.close_now()


def call_on_loop(loop: asyncio.AbstractEventLoop, close: Callable[..., None], *args: Any) -> None:
    """Run ``close(*args)`` (a finalizer closing sockets) on ``loop``'s thread if that loop
    runs in another thread, else right here."""
    try:
        here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        here = None
    if loop.is_running() and loop is not here:
        with contextlib.suppress(RuntimeError):  # closed meanwhile
            loop.call_soon_threadsafe(close, *args)
            return
    close(*args)
