"""Process helpers shared by the local server launchers: ports, spawning, readiness, stopping."""

from __future__ import annotations

import asyncio
import configparser
import contextlib
import ctypes
import functools
import os
import shutil
import signal
import socket
import ssl as ssl_module
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

# The v1 (tempauth) users of the Swift test beds: test:tester3 is in account test without being
# its admin: it may read, not change ACLs.
TEST_USERS = {"test:tester": "testing", "test2:tester2": "testing2", "test:tester3": "testing3"}


class LocalServer:
    """Base of the launchers: ``with Server(...) as server`` starts it and always stops it.
    :meth:`_start` spawns processes working in :attr:`dir` (``None``: a temporary one, removed on
    stop); a failed start stops them all and keeps the directory, for its logs."""

    _START_TIMEOUT = 60.0  # generous: a loaded 2-core machine starts servers far slower

    def __init__(self, dir: str | Path | None = None, kind: str = "server") -> None:
        self._own_dir = dir is None
        self.dir = Path(dir or tempfile.mkdtemp(prefix=f"zarrstores-{kind}-")).resolve()
        self.pids: list[int] = []
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> Self:
        """Start and wait until it answers; raises ``ServerStartError`` naming a log file."""
        try:
            self._start()
        except BaseException:
            self._own_dir = False
            self.stop()
            raise
        return self

    def _start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop every process it started, the last one first; remove a temporary directory."""
        while self._procs:
            stop([self._procs.popitem()[1]])
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _spawn(self, name: str, cmd: Sequence[str], *, log: Path, **options: Any) -> None:
        self._procs[name] = proc = spawn(cmd, log=log, **options)
        self.pids.append(proc.pid)

    def _wait(self, check: Callable[[], bool], what: str, log: Path) -> None:
        """:func:`wait_until` ``check``, failing early if one of the processes exits."""
        procs = list(self._procs.values())
        wait_until(check, what=what, timeout=self._START_TIMEOUT, procs=procs, log=log)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ThreadedProxy(LocalServer):
    """Base of the proxies: ``url`` (127.0.0.1:``port``) forwards to ``target`` (``host:port``
    or ``http://host:port``); :meth:`_handle` serves each connection on an event loop of its
    own in a daemon thread. ``ssl=`` serves HTTPS."""

    def __init__(self, target: str, *, ssl: ssl_module.SSLContext | None = None) -> None:
        parts = urlsplit(target if "://" in target else f"http://{target}")
        self.target_host, self.target_port = parts.hostname or "127.0.0.1", parts.port or 80
        self.port = free_port()
        self.url = f"{'https' if ssl else 'http'}://127.0.0.1:{self.port}"
        self._ssl = ssl
        self._server: asyncio.Server | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> Self:
        """Start listening (returns once it does)."""
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        """Stop listening, end every connection and the thread."""
        if self._thread.is_alive():
            self._call(self._shutdown())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._handle, "127.0.0.1", self.port, ssl=self._ssl, backlog=512
            )

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _shutdown(self) -> None:
        await self._close()
        handlers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)


class ServerStartError(RuntimeError):
    """A local server did not come up; the message names it and where its log is."""


class SwiftV1Users:
    """``get_token`` and ``st_env`` of a server with v1 auth at ``auth_url`` for ``users``."""

    auth_url: str
    users: dict[str, str]

    def get_token(self, user: str = "test:tester") -> tuple[str, str]:
        """``(storage_url, token)`` of a v1 login of ``user`` (one of :attr:`users`)."""
        headers = {"X-Auth-User": user, "X-Auth-Key": self.users[user]}
        req = urllib.request.Request(self.auth_url, headers=headers)
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.headers["X-Storage-Url"], resp.headers["X-Auth-Token"]

    def st_env(self, user: str = "test:tester") -> dict[str, str]:
        """``ST_AUTH``/``ST_USER``/``ST_KEY`` for the ``swift`` CLI (v1 auth)."""
        return {"ST_AUTH": self.auth_url, "ST_USER": user, "ST_KEY": self.users[user]}


class S3Admin:
    """``admin_client()`` of a server with ``endpoint``, ``region`` and admin keys."""

    region: str = "us-east-1"
    endpoint: str
    admin_access_key: str
    admin_secret_key: str
    _admin_retries: ClassVar[dict[str, int] | None] = None

    def admin_client(self, service: str = "s3") -> Any:
        """A botocore client (``s3`` path-style, or e.g. ``iam``) with the admin's keys, cached."""
        import botocore.config
        import botocore.session

        clients = self.__dict__.setdefault("_admin_clients", {})
        if (service, self.endpoint) not in clients:
            config = botocore.config.Config(
                signature_version="s3v4" if service == "s3" else "v4",
                s3={"addressing_style": "path"},
                retries=self._admin_retries,
            )
            clients[service, self.endpoint] = botocore.session.get_session().create_client(
                service,
                endpoint_url=self.endpoint,
                region_name=self.region,
                aws_access_key_id=self.admin_access_key,
                aws_secret_access_key=self.admin_secret_key,
                config=config,
            )
        return clients[service, self.endpoint]


def allow_document(**statement: Any) -> dict[str, Any]:
    """An IAM policy document with one ``Allow`` statement."""
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", **statement}]}


def free_ports(count: int, also_free: Iterable[int] = ()) -> list[int]:
    """``count`` free TCP ports on 127.0.0.1, each also with ``port + o`` free for ``also_free``."""
    offsets = [0, *also_free]
    taken: set[int] = set()
    ports: list[int] = []
    for _ in range(200 * count):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        wanted = {port + o for o in offsets}
        if max(wanted) <= 65535 and not wanted & taken and all(map(_is_free, wanted)):
            taken |= wanted
            ports.append(port)
            if len(ports) == count:
                return ports
    raise ServerStartError("no free TCP ports found on 127.0.0.1")


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    return free_ports(1)[0]


def write_ini(path: Path, sections: dict[str, dict[str, Any]]) -> None:
    """Write ``sections`` (name -> option -> value) as an ini file."""
    ini = configparser.RawConfigParser()
    ini.read_dict(sections)
    with path.open("w") as f:
        ini.write(f)


def check_socket_path(dir: Path, name: str, what: str) -> None:
    """ServerStartError when ``dir / name`` is too long for a unix socket path."""
    if len(str(dir / name)) > 100:  # sockaddr_un holds 108 bytes with the NUL
        raise ServerStartError(f"{what} dir {dir} is too long for unix socket paths")


def _is_free(port: int) -> bool:
    with socket.socket() as s, contextlib.suppress(OSError):
        s.bind(("127.0.0.1", port))
        return True
    return False


def _die_with_parent(death_signal: int) -> None:
    # In the child before exec: it gets ``death_signal`` when its starter dies, so a killed test
    # run leaves no server behind. (It follows the starting *thread*: start from a lasting one.)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, death_signal)  # PR_SET_PDEATHSIG
    os.setpgrp()


def spawn(
    cmd: Sequence[str],
    *,
    log: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    death_signal: int = signal.SIGTERM,
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in a process group of its own, output to ``log``, dying with this one."""
    with open(log, "ab") as logf:  # the child has its own copy
        return subprocess.Popen(
            list(cmd),
            stdout=logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            preexec_fn=functools.partial(_die_with_parent, death_signal),
        )


def venv_bin(name: str) -> str:
    """Path of an executable installed beside this interpreter (the project's virtual env)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def stop(procs: Iterable[subprocess.Popen[bytes]], timeout: float = 10.0) -> None:
    """SIGTERM each process group, wait, then SIGKILL what is left."""
    procs = [p for p in procs if p.poll() is None]
    for p in procs:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)


def wait_until(
    check: Callable[[], bool],
    *,
    what: str,
    timeout: float = 30.0,
    procs: Sequence[subprocess.Popen[bytes]] = (),
    log: Path | None = None,
) -> None:
    """Poll ``check`` until true (OSError, ServerStartError: not yet); fail if a ``procs`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise ServerStartError(
                    f"{what} exited with code {p.returncode} while starting; see {log or 'its log'}"
                )
        with contextlib.suppress(OSError, ServerStartError):
            if check():
                return
        time.sleep(0.05)
    raise ServerStartError(f"{what} did not answer within {timeout:.0f} s; see {log or 'its log'}")


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port`` (raises OSError if not)."""
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def http_status(url: str, timeout: float = 2.0) -> int:
    """Status of a plain GET (any status, also 4xx/5xx); raises OSError if nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
