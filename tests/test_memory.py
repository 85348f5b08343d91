"""A large read holds one copy of the object in memory, not two (tracemalloc's peak of Python
allocations while the store reads it), and reads the right bytes, whole and in part; a write
allocates no copy of the value."""

from __future__ import annotations

import tracemalloc
import uuid

import numpy as np
from backends import Backend, swift_and_s3_fixture  # noqa: F401 (fixture)
from zarr.abc.store import RangeByteRequest, Store
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync
from zarr.storage import FsspecStore

SIZE = 24 << 20


def test_large_read_holds_one_copy(backend: Backend) -> None:
    _holds_one_copy(backend.store(f"memory-{uuid.uuid4().hex[:8]}"))


def test_large_read_through_a_url_holds_one_copy(backend: Backend) -> None:
    """zarr's ``FsspecStore`` on ``swift://`` / ``minio://`` (the asynchronous instance zarr
    makes of the filesystem) wraps the read's buffer too. (obstore's buffers are outside
    tracemalloc: test_minio_fs checks that ``minio://`` hands zarr obstore's buffer.)"""
    mapper = backend.fs().get_mapper(f"{backend.container}/memory-{uuid.uuid4().hex[:8]}")
    _holds_one_copy(FsspecStore.from_mapper(mapper))


def _holds_one_copy(store: Store) -> None:
    blob = np.random.default_rng(5).bytes(SIZE)
    prototype = default_buffer_prototype()
    sync(store.set("big", prototype.buffer.from_bytes(blob)))
    tracemalloc.start()
    try:
        got = sync(store.get("big", prototype))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got is not None and got.to_bytes() == blob
    assert peak < 1.5 * SIZE, f"{peak / SIZE:.2f} copies of the object at once"
    part = sync(store.get("big", prototype, RangeByteRequest(1 << 20, 5 << 20)))
    assert part is not None and part.to_bytes() == blob[1 << 20 : 5 << 20]


def test_large_write_holds_no_second_copy(backend: Backend) -> None:
    """Writing a large value (a shard) holds no copy of it beside zarr's buffer: both clients
    send from it (on Swift, aiohttp would join the request headers and the body into a new
    copy on some Python versions; obstore takes any buffer)."""
    prefix = f"memory-{uuid.uuid4().hex[:8]}"
    store = backend.store(prefix)
    blob = np.random.default_rng(6).bytes(SIZE)
    value = default_buffer_prototype().buffer.from_bytes(blob)
    sync(store.set("warm", default_buffer_prototype().buffer.from_bytes(b"x" * (2 << 20))))
    tracemalloc.start()
    try:
        sync(store.set("big", value))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 0.25 * SIZE, f"{peak / SIZE:.2f} copies of the value at once"
    assert backend.raw_get(f"{prefix}/big") == blob
