"""Let native threads finish the Python they are running before the interpreter finalizes.

obstore's coroutines are resolved from tokio's threads: pyo3-async-runtimes calls the event
loop's ``call_soon_threadsafe`` there, which lets go of the GIL while it wakes the loop. If the
main thread finishes meanwhile, CPython before 3.14 ends such a thread with ``pthread_exit``
when it asks for the GIL back, and that aborts the whole process (SIGABRT, exit code 134) as it
unwinds through Rust frames (CPython gh-87135). Seen here in 4 of 880 short processes that
wrote through ``MinioStore`` and exited right after (and once in the test suite). The wait
below is registered with ``atexit``, which runs before finalization: it returns at once when no
such thread is in Python, else as soon as none is (``WAIT_MAX`` at most).
"""

from __future__ import annotations

import atexit
import sys
import threading
import time

WAIT_MAX = 2.0
_registered = False


def foreign_threads_in_python() -> list[int]:
    """Ids of threads that run Python code but were not started by ``threading``."""
    ours = {t.ident for t in threading.enumerate() if not isinstance(t, threading._DummyThread)}
    return [ident for ident in sys._current_frames() if ident not in ours]


def wait_for_foreign_threads(limit: float = WAIT_MAX) -> None:
    """Sleep (GIL released) until no foreign thread runs Python code, ``limit`` s at most."""
    deadline = time.monotonic() + limit
    while foreign_threads_in_python() and time.monotonic() < deadline:
        time.sleep(0.001)


def guard_exit() -> None:
    """Register ``wait_for_foreign_threads`` at exit, once per process (Python < 3.14: 3.14
    lets such threads hang instead)."""
    global _registered
    if not _registered and sys.version_info < (3, 14):
        atexit.register(wait_for_foreign_threads)
        _registered = True
