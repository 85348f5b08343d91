"""A large read holds one copy of the object in memory, not two (tracemalloc's peak of Python
allocations while the store reads it), and reads the right bytes, whole and in part."""

from __future__ import annotations

import tracemalloc
import uuid

import numpy as np
from backends import Backend, swift_and_s3_fixture  # noqa: F401 (fixture)
from zarr.abc.store import RangeByteRequest
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

SIZE = 24 << 20


def test_large_read_holds_one_copy(backend: Backend) -> None:
    store = backend.store(f"memory-{uuid.uuid4().hex[:8]}")
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
    """Writing a large value (a shard) holds no copy of it beside zarr's buffer on Swift (the
    client sends from the buffer; aiohttp would join the request headers and the body into a
    new copy on some Python versions), one on S3 (the bytes handed to obstore)."""
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
    copies = 0 if backend.kind == "swift" else 1
    assert peak < (copies + 0.5) * SIZE, f"{peak / SIZE:.2f} copies of the value at once"
    assert backend.raw_get(f"{prefix}/big") == blob
