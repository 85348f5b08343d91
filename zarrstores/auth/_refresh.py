"""Credentials of every kind (STS keys, Swift tokens) cached and refreshed before they expire,
once for all threads, asyncio tasks and the copies of a cache unpickled in one process (dask
ships one per task)."""

from __future__ import annotations

import asyncio
import logging
import math
import operator
import random
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .errors import AuthConnectionError, TransientError

log = logging.getLogger("zarrstores.auth")


class RefreshingCache[T]:
    """Credentials from ``fetch``, kept until they near ``expires_at(creds)``.

    Advisory window (``advisory`` s before expiry): one caller refreshes, the others go on with
    the old credentials, still used if that refresh fails; mandatory window (``mandatory`` s):
    every caller waits for the refresh. They default to a quarter and a tenth of the lifetime,
    capped at 5 and 1 minutes: 900 s credentials are fetched once per ~11 minutes, never per
    request. ``TransientError`` from ``fetch`` is retried with backoff; others raise at once.
    """

    def __init__(
        self,
        fetch: Callable[[], T],
        expires_at: Callable[[T], float | None],
        *,
        retries: int = 3,
        backoff: float = 0.25,
        advisory: float | None = None,
        mandatory: float | None = None,
    ) -> None:
        self._fetch = fetch
        self._expires_at = expires_at
        self._retries = retries
        self._backoff = backoff
        self._advisory = advisory
        self._mandatory = mandatory
        self._lock = threading.Lock()
        self._value: T | None = None
        self._fetched_at = 0.0
        self.exchanges = 0  # successful fetches: STS exchanges, Swift logins
        self._key = uuid.uuid4().hex  # names this cache in every process it is unpickled in
        with _shared_lock:
            _originals[self._key] = self

    def __reduce__(self) -> tuple[Any, ...]:
        # The lock cannot travel; the short-lived credentials may (a worker need not log in
        # before its first request). dask ships a store per task: all copies unpickled in one
        # process are one cache, so a worker refreshes once per credential lifetime, not per task.
        state = {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_deadlines")}
        return (_shared_copy, (self._key,), state)

    def __setstate__(self, state: dict) -> None:
        with self._lock:
            value, fetched_at = state.pop("_value"), state.pop("_fetched_at")
            if "_fetch" not in self.__dict__:  # the first copy to reach this process
                self.__dict__.update(state)
            if value is not None and (self._value is None or fetched_at > self._fetched_at):
                self._value, self._fetched_at = value, fetched_at

    def _state(self) -> str:
        """'fresh', 'advisory' (refresh soon) or 'stale' (refresh now)."""
        value = self._value
        if value is None:
            return "stale"
        # Asked once per request: the two deadlines are worked out once per credentials.
        deadlines = getattr(self, "_deadlines", None)
        if deadlines is None or deadlines[0] is not value:
            expiry = self._expires_at(value)
            expiry = math.inf if expiry is None else expiry
            life = expiry - self._fetched_at
            advisory = min(300.0, 0.25 * life) if self._advisory is None else self._advisory
            mandatory = min(60.0, 0.1 * life) if self._mandatory is None else self._mandatory
            self._deadlines = deadlines = (value, expiry - advisory, expiry - mandatory)
        now = time.time()
        if now >= deadlines[2]:
            return "stale"
        return "advisory" if now >= deadlines[1] else "fresh"

    def get(self) -> T:
        """Current credentials, fetched or refreshed if needed (thread-safe, single-flight)."""
        state = self._state()
        if state == "advisory" and self._lock.acquire(blocking=False):
            try:
                if self._state() == "advisory":
                    self._refresh()
            except Exception as e:
                log.warning("early credential refresh failed, will retry: %s", e)
            finally:
                self._lock.release()
            state = self._state()
        if state != "stale":
            return self._value  # type: ignore[return-value]
        with self._lock:
            if self._state() == "stale":
                self._refresh()
            return self._value  # type: ignore[return-value]

    async def aget(self) -> T:
        """``get()`` for coroutines: no thread hop while the credentials are fresh."""
        if self._state() == "fresh":
            return self._value  # type: ignore[return-value]
        return await asyncio.to_thread(self.get)

    def refresh_after_failure(self, failed: T | None) -> T:
        """Refresh because the server rejected ``failed``; callers that saw the same rejected
        credentials share one refresh."""
        with self._lock:
            if self._value is None or self._value is failed or self._value == failed:
                self._refresh()
            return self._value  # type: ignore[return-value]

    def invalidate(self) -> None:
        """Forget the cached credentials; the next ``get()`` fetches."""
        with self._lock:
            self._value = None

    def _refresh(self) -> None:
        for attempt in range(self._retries + 1):
            try:
                started = time.time()
                value = self._fetch()
            except TransientError as e:
                if attempt == self._retries:
                    raise AuthConnectionError(
                        f"{e} (gave up after {attempt + 1} attempts)"
                    ) from None
                delay = self._backoff * (2**attempt) * (0.5 + random.random())
                log.info("credential fetch failed (%s); retrying in %.2f s", e, delay)
                time.sleep(delay)
                continue
            self._value, self._fetched_at = value, started
            self.exchanges += 1
            return


class CachedCredentials[T]:
    """The credential interface of a kind whose credentials live in a ``RefreshingCache``: the
    cache's methods; for coroutines, the kind's own ``refresh_after_failure`` in a thread."""

    _cache: RefreshingCache[T]

    def get(self) -> T:
        return self._cache.get()

    async def aget(self) -> T:
        return await self._cache.aget()

    def refresh_after_failure(self, failed: T | None) -> T:
        return self._cache.refresh_after_failure(failed)

    async def arefresh_after_failure(self, failed: T | None) -> T:
        return await asyncio.to_thread(self.refresh_after_failure, failed)

    @property
    def exchanges(self) -> int:
        """How many times credentials were fetched (STS exchanges, Swift logins)."""
        return self._cache.exchanges


# Picklable (a lambda is not), as auth objects must be for dask workers.
expires_at = operator.attrgetter("expires_at")

_shared_lock = threading.Lock()
# Caches made here live as long as their owners; caches received are kept while tasks come
# and go (a weak reference would drop one between two tasks), the oldest forgotten first.
_originals: weakref.WeakValueDictionary[str, RefreshingCache[Any]] = weakref.WeakValueDictionary()
_received: OrderedDict[str, RefreshingCache[Any]] = OrderedDict()
_RECEIVED_MAX = 256


def _shared_copy(key: str) -> RefreshingCache[Any]:
    """This process's cache ``key``: the original, or the copy received first (empty until
    ``__setstate__`` fills it)."""
    with _shared_lock:
        cache = _originals.get(key)
        if cache is None:
            cache = _received.pop(key, None)  # put back last: the oldest is forgotten first
            if cache is None:
                cache = RefreshingCache.__new__(RefreshingCache)
                cache.__dict__.update(_lock=threading.Lock(), _value=None, _fetched_at=0.0)
            _received[key] = cache
            if len(_received) > _RECEIVED_MAX:
                _received.popitem(last=False)
        return cache
