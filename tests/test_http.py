"""The lean HTTP/1.1 pool under the S3 client, against a socket server that answers with the
framings real servers use (length, chunked, close-delimited, interim 100) and with broken
answers. The S3 tests run every request of the store through it against the real server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from zarrstores._http import HTTPConnectionError, HTTPPool

Reply = Callable[[asyncio.StreamReader, asyncio.StreamWriter, bytes], Awaitable[bool]]
"""Answers one request (its head given); returns whether to keep the connection."""


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            await reader.readexactly(int(line.split(b":", 1)[1]))
    return head


class Server:
    """Answers each request with ``reply``; counts connections and requests."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]

    def pool(self, **kwargs: object) -> HTTPPool:
        return HTTPPool("http", "127.0.0.1", self.port, **kwargs)  # type: ignore[arg-type]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while (head := await _read_request(reader)) is not None:
                self.requests.append(head)
                if not await self.reply(reader, writer, head):
                    break
                await writer.drain()
        finally:
            writer.close()


def run(coro: Awaitable[object]) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_length_chunked_and_close_delimited_bodies() -> None:
    async def reply(_r: asyncio.StreamReader, w: asyncio.StreamWriter, head: bytes) -> bool:
        path = head.split(b" ")[1]
        if path == b"/length":
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Name: a\r\n\r\nhello")
        elif path == b"/chunked":
            w.write(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: x\r\n\r\n"
            )
        elif path == b"/interim":
            w.write(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
            )
        elif path == b"/head":
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        else:  # no length: the body ends with the connection
            w.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
            return False
        return True

    async def main() -> None:
        async with Server(reply) as server:
            pool = server.pool()
            r = await pool.request("GET", "/length", {"host": "x"})
            assert (r.status, r.body, r.headers["x-name"]) == (200, b"hello", "a")
            r = await pool.request("GET", "/chunked", {"host": "x"})
            assert r.body == b"abcde"
            r = await pool.request("PUT", "/interim", {"host": "x"}, b"data")
            assert (r.status, r.body) == (201, b"")
            r = await pool.request("HEAD", "/head", {"host": "x"})
            assert (r.status, r.body, r.headers["content-length"]) == (200, b"", "1000")
            assert server.connections == 1  # all on one keep-alive connection
            r = await pool.request("GET", "/eof", {"host": "x"})
            assert r.body == b"until the end"
            r = await pool.request("GET", "/length", {"host": "x"})
            assert r.body == b"hello" and server.connections == 2  # a new one after close
            await pool.close()

    run(main())


def test_a_keep_alive_connection_the_server_closed_is_replaced_silently() -> None:
    async def reply(_r: asyncio.StreamReader, w: asyncio.StreamWriter, _head: bytes) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await w.drain()
        return False  # closes after answering, without saying so

    async def main() -> None:
        async with Server(reply) as server:
            pool = server.pool()
            for _ in range(3):
                assert (await pool.request("GET", "/", {"host": "x"})).body == b"ok"
                await asyncio.sleep(0.05)
            assert server.connections == 3 and len(server.requests) == 3
            await pool.close()

    run(main())


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP/1.x answer"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "in the middle of an answer"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", "Content-Length is not a number"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "not hex"),
        (b"", "closed the connection before answering"),
    ],
)
def test_broken_answers_raise_connection_errors(answer: bytes, message: str) -> None:
    async def reply(_r: asyncio.StreamReader, w: asyncio.StreamWriter, _head: bytes) -> bool:
        w.write(answer)
        await w.drain()
        return False

    async def main() -> None:
        async with Server(reply) as server:
            pool = server.pool()
            with pytest.raises(HTTPConnectionError, match=message):
                await pool.request("GET", "/", {"host": "x"})
            await pool.close()

    run(main())


def test_timeouts_limits_and_refused_connections() -> None:
    in_flight = [0, 0]  # now, most

    async def slow(_r: asyncio.StreamReader, w: asyncio.StreamWriter, _head: bytes) -> bool:
        in_flight[0] += 1
        in_flight[1] = max(in_flight)
        await asyncio.sleep(0.2)
        in_flight[0] -= 1
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        return True

    async def main() -> None:
        async with Server(slow) as server:
            pool = server.pool(timeout=0.05)
            with pytest.raises(TimeoutError):
                await pool.request("GET", "/", {"host": "x"})
            assert not pool._idle  # a connection left mid-answer is not reused
            await asyncio.sleep(0.25)
            limited = server.pool(limit=2)
            in_flight[1] = 0
            await asyncio.gather(*(limited.request("GET", "/", {"host": "x"}) for _ in range(6)))
            assert in_flight[1] == 2
            assert server.connections == 3  # 1 timed out + 2 for the six requests
            await pool.close()
            await limited.close()
            port = server.port
        refused = HTTPPool("http", "127.0.0.1", port)
        with pytest.raises(HTTPConnectionError, match=r"cannot connect to 127\.0\.0\.1"):
            await refused.request("GET", "/", {"host": "x"})

    run(main())


def test_large_bodies_go_both_ways() -> None:
    body = bytes(range(256)) * (40 << 10)  # 10 MiB: the socket buffer fills, writing waits

    async def echo_size(r: asyncio.StreamReader, w: asyncio.StreamWriter, head: bytes) -> bool:
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        return True

    async def main() -> None:
        async with Server(echo_size) as server:
            pool = server.pool()
            r = await pool.request("PUT", "/big", {"host": "x"}, body)
            assert r.body == body
            assert b"content-length: %d" % len(body) in server.requests[0]
            await pool.close()

    run(main())


def test_an_answer_before_the_whole_body_is_sent_is_returned_and_its_connection_dropped() -> None:
    """A server may refuse a large PUT before reading its body (401, 413)."""
    connections = 0

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 3\r\n\r\nbig")
        await writer.drain()
        await asyncio.sleep(1)  # neither reads the body nor closes
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(refuse, "127.0.0.1", 0)
        pool = HTTPPool("http", "127.0.0.1", server.sockets[0].getsockname()[1], timeout=5)
        r = await pool.request("PUT", "/x", {"host": "x"}, b"\0" * (32 << 20))
        assert (r.status, r.body) == (413, b"big")
        assert not pool._idle  # the rest of the body is still on its way: never reused
        r = await pool.request("PUT", "/x", {"host": "x"}, b"small")
        assert r.status == 413 and connections == 2
        await pool.close()
        server.close()

    run(main())


def test_a_slow_request_that_moves_is_not_cut_off_one_that_stalls_is() -> None:
    """``timeout`` bounds a stall, not a request: a large body taken slowly, or an answer
    arriving slowly, goes on as long as bytes move."""
    body = b"\1" * (32 << 20)  # well beyond what the kernel's socket buffers hold

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if head.startswith(b"PUT"):
            for _ in range(len(body) // (512 << 10)):  # 64 pieces over > 0.64 s
                await reader.readexactly(512 << 10)
                await asyncio.sleep(0.01)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        elif head.startswith(b"GET /trickle"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n")
            for _ in range(8):  # a byte every 0.2 s
                await writer.drain()
                await asyncio.sleep(0.2)
                writer.write(b"x")
        else:  # stalls: says nothing
            await asyncio.sleep(2)
        await writer.drain()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(slow, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = HTTPPool("http", "127.0.0.1", port, timeout=0.5)
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert (await pool.request("PUT", "/big", {"host": "x"}, body)).status == 200
        assert (await pool.request("GET", "/trickle", {"host": "x"})).body == b"x" * 8
        assert loop.time() - started > 0.5 * 4  # both took longer than the timeout
        with pytest.raises(TimeoutError, match=r"nothing moved for 0\.5 s"):
            await pool.request("GET", "/stall", {"host": "x"})
        await pool.close()
        server.close()

    run(main())
