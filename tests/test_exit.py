"""A process that used ``MinioStore`` ends cleanly even when one of obstore's threads is still
in Python (waking the event loop) as the main thread finishes: before Python 3.14 such a
thread is ended with ``pthread_exit`` when it asks for the GIL back, and the process aborts."""

from __future__ import annotations

import asyncio
import atexit
import multiprocessing
import sys
import threading
import time
from asyncio import base_events

from backends import Backend, s3_backend_fixture  # noqa: F401  (a fixture)

from zarrstores.minio import MinioStore


def _exit_while_a_thread_wakes_the_loop(store: MinioStore, guarded: bool) -> None:
    """One request whose obstore thread stays in ``call_soon_threadsafe`` (as it may, waiting
    for the GIL on a busy machine) until the process begins to exit."""
    import zarrstores._exit

    if not guarded:
        zarrstores._exit._registered = True  # as if the wait were never registered
    original = base_events.BaseEventLoop.call_soon_threadsafe
    exiting = threading.Event()

    def slow_wake(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        handle = original(self, *args, **kwargs)
        foreign = threading.get_ident() not in {t.ident for t in threading.enumerate()}
        while foreign and not exiting.is_set():  # obstore's thread, not an executor's
            time.sleep(0.001)
        return handle

    base_events.BaseEventLoop.call_soon_threadsafe = slow_wake  # type: ignore[method-assign]
    assert asyncio.run(store.exists("missing")) is False
    atexit.register(exiting.set)  # the first to run at exit (the wait, if any, comes after)


def test_the_process_waits_for_obstores_threads_and_ends_cleanly(s3_backend: Backend) -> None:
    store = s3_backend.store()
    context = multiprocessing.get_context("spawn")
    codes = {}
    for guarded in (True, False):
        child = context.Process(target=_exit_while_a_thread_wakes_the_loop, args=(store, guarded))
        child.start()
        child.join(60)
        codes[guarded] = child.exitcode
    assert codes[True] == 0, codes
    # Without the wait the race is real (Python 3.14 lets the thread hang instead).
    assert codes[False] == (-6 if sys.version_info < (3, 14) else 0), codes
