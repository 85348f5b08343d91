"""Process helpers shared by the local server launchers: ports, spawning, readiness, stopping."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Self

_PR_SET_PDEATHSIG = 1


class LocalServer:
    """Base of the launchers: ``with Server(...) as server`` starts it and always stops it."""

    def start(self) -> Self:
        """Start and wait until it answers; raises ``ServerStartError``."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop every process it started."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ServerStartError(RuntimeError):
    """A local server did not come up; the message names it and where its log is."""


def free_port(also_free: Iterable[int] = ()) -> int:
    """A free TCP port on 127.0.0.1 such that ``port + o`` is free too for each offset."""
    offsets = list(also_free)
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + max(offsets, default=0) > 65535:
            continue
        if all(_is_free(port + o) for o in offsets):
            return port
    raise ServerStartError("no free TCP port found on 127.0.0.1")


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _die_with_parent(death_signal: int) -> Callable[[], None]:
    def prepare() -> None:
        # Runs in the child before exec: the kernel sends it ``death_signal`` when the process
        # that started it dies, so a killed test run leaves no server behind. (The signal
        # follows the starting *thread*: start servers from a thread that lives as long as
        # they should.)
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, death_signal)
        os.setpgrp()

    return prepare


def spawn(
    cmd: Sequence[str],
    *,
    log: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    death_signal: int = signal.SIGTERM,
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own process group, output to ``log``, dying with this process
    (it gets ``death_signal`` when this process ends)."""
    logf = open(log, "ab")  # noqa: SIM115 - owned by the child; closed here right after fork
    try:
        return subprocess.Popen(
            list(cmd),
            stdout=logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            preexec_fn=_die_with_parent(death_signal),
        )
    finally:
        logf.close()


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
    """Poll ``check`` until it is true; fail early if one of ``procs`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise ServerStartError(
                    f"{what} exited with code {p.returncode} while starting; see {log or 'its log'}"
                )
        try:
            if check():
                return
        except OSError:
            pass
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
