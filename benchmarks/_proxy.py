"""A TCP proxy in front of a server: adds a fixed delay each way, and counts HTTP requests.

The delay proxy runs as its own process (``python -m benchmarks._proxy PORT HOST:PORT DELAY``)
so that its CPU is not the client's. The counting proxy runs in a thread of this process
(``CountingProxy``); it parses the request side of HTTP/1.1 to count requests by method.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

from zarrstores.devserver._proc import free_port, listening, spawn, stop, wait_until


class RequestCounter:
    """Counts HTTP/1.1 requests in a client's byte stream (Content-Length or chunked bodies)."""

    def __init__(self, counts: Counter[str], lines: list[str] | None = None) -> None:
        self.counts = counts
        self.lines = lines
        self._buf = b""
        self._body_left = 0
        self._chunked = False
        self._broken = False

    def feed(self, data: bytes) -> None:
        if self._broken:
            return
        self._buf += data
        try:
            while self._step():
                pass
        except ValueError:
            self._broken = True  # not HTTP we understand: stop counting this connection

    def _step(self) -> bool:
        if self._body_left:
            take = min(self._body_left, len(self._buf))
            self._buf = self._buf[take:]
            self._body_left -= take
            return bool(self._buf) and not self._body_left
        if self._chunked:
            return self._chunk()
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        head, self._buf = self._buf[:end].decode("latin-1"), self._buf[end + 4 :]
        lines = head.split("\r\n")
        self.counts[lines[0].split(" ", 1)[0]] += 1
        if self.lines is not None:
            self.lines.append(lines[0].rsplit(" ", 1)[0])
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines)}
        if "chunked" in headers.get("transfer-encoding", ""):
            self._chunked = True
        else:
            self._body_left = int(headers.get("content-length", "0"))
        return bool(self._buf)

    def _chunk(self) -> bool:
        end = self._buf.find(b"\r\n")
        if end < 0:
            return False
        size = int(self._buf[:end].split(b";")[0], 16)
        if size == 0:
            trailer = self._buf.find(b"\r\n\r\n", end)
            if trailer < 0:
                return False
            self._buf = self._buf[trailer + 4 :]
            self._chunked = False
            return bool(self._buf)
        if len(self._buf) < end + 2 + size + 2:
            return False
        self._buf = self._buf[end + 2 + size + 2 :]
        return bool(self._buf)


async def _forward(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    delay: float,
    counter: RequestCounter | None,
    moved: Counter[str] | None = None,
    way: str = "",
) -> None:
    """Copy ``reader`` to ``writer``, each piece ``delay`` seconds after it arrived (no
    bandwidth limit: pieces in flight overlap, as on a long link)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            due, data = await queue.get()
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            if not data:
                with contextlib.suppress(OSError):
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.ensure_future(send())
    try:
        while data := await reader.read(1 << 16):
            if counter is not None:
                counter.feed(data)
            if moved is not None:
                moved[way] += len(data)
            queue.put_nowait((loop.time() + delay, data))
        queue.put_nowait((loop.time() + delay, b""))
        await sender
    except (ConnectionError, OSError):
        pass
    finally:
        sender.cancel()
        writer.close()


async def serve(
    port: int,
    host: str,
    target_port: int,
    delay: float,
    counts: Counter[str] | None = None,
    lines: list[str] | None = None,
    moved: Counter[str] | None = None,
) -> asyncio.Server:
    """Listen on 127.0.0.1:``port`` and proxy each connection to ``host:target_port``
    (``moved``: bytes sent ``up`` to the server and ``down`` to the client)."""

    async def handle(c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        try:
            s_reader, s_writer = await asyncio.open_connection(host, target_port)
        except OSError:
            c_writer.close()
            return
        counter = RequestCounter(counts, lines) if counts is not None else None
        await asyncio.gather(
            _forward(c_reader, s_writer, delay, counter, moved, "up"),
            _forward(s_reader, c_writer, delay, None, moved, "down"),
        )

    return await asyncio.start_server(handle, "127.0.0.1", port, backlog=256)


class DelayProxy:
    """The delay proxy as a separate process in front of ``target`` (``host:port``)."""

    def __init__(self, target: str, delay: float, log: Path) -> None:
        self.target = target
        self.delay = delay
        self.log = log
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pids(self) -> list[int]:
        return [self._proc.pid] if self._proc else []

    def start(self) -> DelayProxy:
        self.port = free_port()
        cmd = [sys.executable, "-m", "benchmarks._proxy", str(self.port), self.target]
        self._proc = spawn([*cmd, str(self.delay)], log=self.log, cwd=Path(__file__).parent.parent)
        wait_until(
            lambda: listening(self.port), what="delay proxy", procs=[self._proc], log=self.log
        )
        return self

    def stop(self) -> None:
        if self._proc:
            stop([self._proc])
            self._proc = None


class CountingProxy:
    """A proxy without delay in a thread of this process; ``counts`` maps method to count,
    ``lines`` holds each request's method and path, ``moved`` the bytes each way."""

    def __init__(self, target: str) -> None:
        self.host, port = target.rsplit(":", 1)
        self.target_port = int(port)
        self.counts: Counter[str] = Counter()
        self.lines: list[str] = []
        self.moved: Counter[str] = Counter()
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="counting-proxy", daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            serve(self.port, self.host, self.target_port, 0.0, self.counts, self.lines, self.moved)
        )
        self._ready.set()
        self._loop.run_forever()
        server.close()
        tasks = asyncio.all_tasks(self._loop)
        for task in tasks:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self._loop.close()

    def reset(self) -> None:
        self.counts.clear()
        self.lines.clear()
        self.moved.clear()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", type=int)
    parser.add_argument("target", help="host:port")
    parser.add_argument("delay", type=float, help="seconds added each way")
    args = parser.parse_args()
    host, port = args.target.rsplit(":", 1)

    async def run() -> None:
        server = await serve(args.port, host, int(port), args.delay)
        async with server:
            await server.serve_forever()

    asyncio.run(run())


if __name__ == "__main__":
    main()
