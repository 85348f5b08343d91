"""A paste filter for the local Swift proxies (``filter_factory``): an in-process memcache and
fault injection, steered by a JSON control file that :class:`~.swift.SwiftServer` writes::

    {"generation": 2,
     "faults": [{"id": "f1", "status": 503, "count": 2, "method": "PUT",
                 "path_contains": "/cont", "delay": 0.0, "reset": false}]}

A changed ``generation`` empties the cache (every tempauth token stops working). Faults (see
``SwiftServer.inject_faults``) keep their used counts by ``id``: adding one re-arms no other.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import struct
import time
from collections.abc import Callable, Iterable
from http.client import responses
from pathlib import Path
from typing import Any

import eventlet
import eventlet.wsgi
from swift.common.swob import Response

_MEMCACHE_MAX_RELATIVE = 30 * 24 * 3600  # memcached reads larger "time" values as epoch seconds
_PURGE_ABOVE = 50_000

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _ControlFile:
    """The control file's content ({} without one), parsed again only when a stat shows it
    changed (a stat per request, not a read and a JSON parse). Writers replace it atomically: a
    new inode marks a new version even within one clock tick. A malformed file keeps the last."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._sig: tuple[int, int, int] | None = None
        self.data: dict[str, Any] = {}

    def read(self) -> dict[str, Any]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._sig, self.data = None, {}
            return self.data
        sig = (st.st_ino, st.st_mtime_ns, st.st_size)
        if sig != self._sig:
            try:
                with open(self.path, encoding="utf-8") as f:
                    self.data = json.load(f)
            except (OSError, ValueError):
                return self.data  # mid-replace or malformed: the last good version
            self._sig = sig
        return self.data


class DictCache:
    """The part of ``swift.common.memcached.MemcacheRing`` the proxy uses (no ``incr``: only
    sharded containers need it), in a dict of one proxy process. Values round-trip through JSON
    like real memcache, so callers never share mutable objects."""

    def __init__(
        self, persist_file: str | None = None, persist_prefixes: Iterable[str] = ()
    ) -> None:
        self._items: dict[str, tuple[float, str]] = {}  # key -> (expires, value as JSON)
        self._persist_file = persist_file
        self._persisted = tuple(persist_prefixes) if persist_file else ()  # key prefixes
        if persist_file:  # tokens survive a proxy restart, as they would in a real memcached
            with contextlib.suppress(OSError, ValueError):
                saved, now = json.loads(Path(persist_file).read_text("utf-8")), time.time()
                self._items.update((k, (exp, v)) for k, (exp, v) in saved.items() if exp > now)

    # -- memcache API -------------------------------------------------------------------------

    def get(self, key: str, raise_on_error: bool = False) -> Any:
        item = self._items.get(key)
        if item is None or item[0] <= time.time():
            self._items.pop(key, None)
            return None
        return json.loads(item[1])

    def set(
        self,
        key: str,
        value: Any,
        serialize: bool = True,
        time: float = 0,
        min_compress_len: int = 0,
        raise_on_error: bool = False,
    ) -> None:
        if isinstance(value, bytes):
            value = value.decode("utf8")
        self._items[key] = (_expiry(time), json.dumps(value))
        if len(self._items) > _PURGE_ABOVE:
            self._purge()
        if key.startswith(self._persisted):
            self._save_persisted()

    def delete(self, key: str, server_key: str | None = None) -> None:
        if self._items.pop(key, None) is not None and key.startswith(self._persisted):
            self._save_persisted()

    # -- beyond memcache ----------------------------------------------------------------------

    def clear(self) -> None:
        """Forget everything, also the persisted tokens."""
        self._items.clear()
        if self._persist_file:
            Path(self._persist_file).unlink(missing_ok=True)

    def _purge(self) -> None:
        now = time.time()
        for key in [k for k, (exp, _) in self._items.items() if exp <= now]:
            del self._items[key]

    def _save_persisted(self) -> None:
        assert self._persist_file
        now = time.time()
        keep = {
            k: v for k, v in self._items.items() if k.startswith(self._persisted) and v[0] > now
        }
        tmp = f"{self._persist_file}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(keep, f)
        os.replace(tmp, self._persist_file)


def _expiry(ttl: float) -> float:
    if ttl <= 0:
        return math.inf
    return float(ttl) if ttl > _MEMCACHE_MAX_RELATIVE else time.time() + ttl


class ControlMiddleware:
    """Puts one :class:`DictCache` into ``env['swift.cache']`` (emptied on a new generation) and
    answers requests matching a fault with an error status, a delay, or a reset connection."""

    def __init__(self, app: WsgiApp, cache: DictCache, control: str) -> None:
        self.app, self.cache, self.control = app, cache, _ControlFile(control)
        self._generation = self.control.read().get("generation", 0)
        self._used: dict[str, int] = {}

    def _take(self, faults: list[dict[str, Any]], env: dict[str, Any]) -> dict[str, Any] | None:
        method, path = env["REQUEST_METHOD"], env.get("PATH_INFO", "")
        for fault in faults:
            used, count = self._used.get(fault["id"], 0), int(fault.get("count", 1))
            if (
                not 0 < count <= used
                and (not fault.get("method") or fault["method"].upper() == method)
                and (fault.get("path_contains") or "") in path
            ):
                self._used[fault["id"]] = used + 1
                return fault
        return None

    def __call__(self, env: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        control = self.control.read()
        if control.get("generation", 0) != self._generation:
            self._generation = control.get("generation", 0)
            self.cache.clear()
        env["swift.cache"] = self.cache
        fault = self._take(control.get("faults") or [], env)
        if fault is None:
            return self.app(env, start_response)
        if fault.get("delay"):
            eventlet.sleep(float(fault["delay"]))
        if fault.get("reset"):
            return _reset(env, start_response)
        status = fault.get("status")
        if not status:
            return self.app(env, start_response)
        reason = responses.get(int(status), "Injected Fault")
        # swob sends no body to a HEAD and sets Content-Length.
        answer = Response(
            f"Injected fault: {status}\n",
            f"{int(status)} {reason}",
            {"X-Injected-Fault": "true"},
            content_type="text/plain",
        )
        return answer(env, start_response)


def _reset(env: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    # already_handled: eventlet writes nothing and closes, as for hijacked (websocket) connections;
    # SO_LINGER 0 makes it an RST, so a client still sending fails at once. The start_response
    # call, which the middlewares above need, is never sent.
    sock = getattr(env.get("eventlet.input"), "_sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    eventlet.wsgi.WSGI_LOCAL.already_handled = True
    start_response("200 OK", [("Content-Length", "0")])
    return []


def filter_factory(global_conf: dict[str, str], **local_conf: str) -> Callable[[WsgiApp], WsgiApp]:
    """``[filter:control]`` with ``control_file`` and optionally ``persist_file/_prefixes``."""
    cache = DictCache(
        local_conf.get("persist_file") or None, local_conf.get("persist_prefixes", "").split()
    )
    return lambda app: ControlMiddleware(app, cache, local_conf["control_file"])
