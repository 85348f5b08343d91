"""The array round both backends share: a zarr v3 array of N uncompressed 64 KiB chunks,
written whole then read whole, by each contender in turn, repetition after repetition.

zarr-based contenders run with ``async.concurrency`` 16, the raw clients with 16 requests in
flight. Store objects are made once per contender and warmed up (connections, credentials)
before the timed repetitions; creating and opening the array's metadata is not timed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import zarr
from zarr.abc.store import Store
from zarr.core.sync import sync
from zarr.storage import MemoryStore

from ._measure import Role, Row, Sample, measure, run_rounds

CHUNK_BYTES = 64 << 10
_ITEMS = CHUNK_BYTES // 4  # float32
ZARR_CONCURRENCY = 16


def zarr_config() -> Any:
    """The zarr settings every zarr-based contender runs with."""
    return zarr.config.set({"async.concurrency": ZARR_CONCURRENCY})


class RawClient(Protocol):
    """What a ceiling client does for the array round (names are full object names)."""

    def write(self, items: list[tuple[str, bytes]]) -> None: ...

    def read(self, names: list[str]) -> list[bytes]: ...


@dataclass
class Contender:
    """A contender: a zarr store factory or a raw client, and a note for the table."""

    name: str
    role: Role
    store: Callable[[], Store] | None = None
    raw: Callable[[], RawClient] | None = None
    note: str = ""
    close: Callable[[Any], None] | None = None
    _made: Any = field(default=None, repr=False)

    def made(self) -> Any:
        if self._made is None:
            self._made = self.store() if self.store else self.raw()  # type: ignore[misc]
        return self._made

    def dispose(self) -> None:
        """Close what ``made()`` opened (connections), if the contender says how."""
        if self._made is not None and self.close is not None:
            with contextlib.suppress(Exception):
                self.close(self._made)
        self._made = None


class _AsyncMemoryStore(MemoryStore):
    """A MemoryStore that zarr drives through its async path, as it drives network stores
    (a plain MemoryStore gets zarr's synchronous fast path)."""

    _supports_sync_io = False


def zarr_alone() -> Contender:
    """zarr on memory through its async path: what zarr itself costs per chunk, no I/O."""
    return Contender(
        "zarr alone (memory, no I/O)",
        "reference",
        _AsyncMemoryStore,
        note="zarr's own work per chunk (async store path, no I/O): part of every zarr-based "
        "contender's client CPU, not of the raw client's",
    )


def close_store(store: Any) -> None:
    """Close a zarr store's connections on zarr's event loop, where they were opened."""
    fs = getattr(store, "fs", None)
    if hasattr(store, "aclose"):
        sync(store.aclose())
    elif fs is not None:
        session = getattr(fs, "_session", None)  # swiftspec
        if session is not None:
            sync(session.close())
        s3 = getattr(fs, "_s3", None)  # s3fs
        if s3 is not None:
            sync(s3.close())
    store.close()


def _data(chunks: int) -> np.ndarray:
    return np.random.default_rng(7).random(chunks * _ITEMS, dtype=np.float32)


def _zarr_write(store: Store, path: str, data: np.ndarray) -> Callable[[], None]:
    arr = zarr.create_array(
        store,
        name=path,
        shape=data.shape,
        chunks=(_ITEMS,),
        dtype="float32",
        compressors=None,
        filters=None,
        fill_value=0,
    )

    def write() -> None:
        arr[:] = data

    return write


def _zarr_read(store: Store, path: str) -> Callable[[], np.ndarray]:
    arr = zarr.open_array(store, path=path, mode="r")
    return lambda: arr[:]


def _chunk_items(path: str, data: np.ndarray) -> list[tuple[str, bytes]]:
    raw = data.tobytes()
    return [
        (f"{path}/c/{i}", raw[i * CHUNK_BYTES : (i + 1) * CHUNK_BYTES])
        for i in range(len(raw) // CHUNK_BYTES)
    ]


def _round(
    c: Contender, path: str, data: np.ndarray
) -> tuple[Callable[[], None], Callable[[], Callable[[], Any]], Callable[[Any], bool]]:
    """(timed write, prepare timed read, check what was read) for one repetition."""
    made = c.made()
    if c.store is not None:
        return (
            _zarr_write(made, path, data),
            lambda: _zarr_read(made, path),
            lambda out: bool(np.array_equal(out, data)),
        )
    items = _chunk_items(path, data)
    names = [n for n, _ in items]
    return (
        lambda: made.write(items),
        lambda: lambda: made.read(names),
        lambda out: b"".join(out) == data.tobytes(),
    )


def run_array(
    label: str,
    contenders: list[Contender],
    *,
    chunks: int,
    reps: int,
    pids: Callable[[], Iterable[int]],
    log: Callable[[str], None] = print,
) -> list[Row]:
    """Write rows then read rows for ``contenders`` (see ``run_rounds``)."""
    data = _data(chunks)
    nbytes = chunks * CHUNK_BYTES
    size = f"{chunks} x 64 KiB"
    writes = {c.name: Row(f"{label} write {size}", c.name, c.role, note=c.note) for c in contenders}
    reads = {c.name: Row(f"{label} read {size}", c.name, c.role, note=c.note) for c in contenders}
    for row in (*writes.values(), *reads.values()):
        row.nbytes, row.requests = nbytes, chunks
    by_name = {c.name: c for c in contenders}
    rows = {c.name: [writes[c.name], reads[c.name]] for c in contenders}
    with zarr_config():
        run_rounds(
            rows,
            lambda name: _warm_up(by_name[name]),
            lambda name, rep: _timed_round(by_name[name], rep, data, pids),
            reps=reps,
            log=log,
        )
    for c in contenders:
        c.dispose()
        log(
            f"  {label} {c.name}: "
            + ", ".join(_summary(r) for r in (writes[c.name], reads[c.name]))
        )
    return [*writes.values(), *reads.values()]


def _warm_up(c: Contender) -> None:
    write, prepare_read, check = _round(c, "warmup", _data(16))
    write()
    if not check(prepare_read()()):
        raise AssertionError("read back other data than written")


def _timed_round(
    c: Contender, rep: int, data: np.ndarray, pids: Callable[[], Iterable[int]]
) -> list[Sample]:
    write, prepare_read, check = _round(c, f"r{rep}", data)
    with measure(pids) as w:
        write()
    read = prepare_read()
    with measure(pids) as r:
        out = read()
    if not check(out):
        raise AssertionError("read back other data than written")
    return [w.sample, r.sample]  # type: ignore[list-item]


def _summary(row: Row) -> str:
    if not row.ok:
        return f"failed ({row.failed})" if row.failed else "no samples"
    return f"{row.mib_s:.1f} MiB/s"
