"""Exclusive creation as one conditional PUT (``If-None-Match: *``), on both backends:
``set_if_not_exists`` from racing processes, fsspec's ``"x"`` modes, server-side copy."""

from __future__ import annotations

import asyncio
import multiprocessing
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from backends import (  # noqa: F401  (fixtures)
    Backend,
    backend_fixture,
    make_backend,
    s3_backend_fixture,
)
from fixtures_swift import memory_dir
from zarr.core.buffer import default_buffer_prototype

from zarrstores._store import ObjectStore
from zarrstores.devserver.swift import SwiftServer
from zarrstores.swift import SwiftFileSystem

KEYS = [f"race/k{i}" for i in range(100)]
MiB = 1 << 20


def _create_all(store: ObjectStore, value: bytes, start: Any) -> None:
    """One racer: ``set_if_not_exists`` on every key, all at once."""
    buffer = default_buffer_prototype().buffer.from_bytes(value)

    async def race() -> None:
        await asyncio.gather(*(store.set_if_not_exists(k, buffer) for k in KEYS))

    start.wait()
    asyncio.run(race())


# S3 only: Swift (2.38) checks If-None-Match when a PUT starts, not atomically with the write,
# so two creations in flight both succeed (here 18 and 50 of 100 keys were created twice). There the
# conditional PUT keeps an existing object, which test_set_if_not_exists_keeps_the_existing_value
# checks; docs/switching.md says so.
def test_two_processes_create_each_key_exactly_once(s3_backend: Backend) -> None:
    backend = s3_backend
    store = backend.store(faulty=True)  # through the proxy, which sees every answer
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    before = len(backend.proxy.answered)  # the proxy may have served other tests
    racers = [
        context.Process(target=_create_all, args=(store, name, start)) for name in (b"a", b"b")
    ]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(120)
    assert [r.exitcode for r in racers] == [0, 0]
    ours = f"/{backend.container}/race/"
    puts = [
        (path, status)
        for method, path, status in backend.proxy.answered[before:]
        if method == "PUT" and ours in path
    ]
    created = Counter(path.rpartition("/race/")[2] for path, status in puts if status < 300)
    refused = Counter(path.rpartition("/race/")[2] for path, status in puts if status == 412)
    names = {k.rpartition("/")[2] for k in KEYS}
    assert set(created) == names and set(created.values()) == {1}, created
    assert set(refused) == names and set(refused.values()) == {1}, refused
    values = {backend.raw_get(k) for k in KEYS}
    assert values <= {b"a", b"b"}


def test_set_if_not_exists_keeps_the_existing_value(backend: Backend) -> None:
    store = backend.store()
    store["zarr.json"] = b"old"
    buffer = default_buffer_prototype().buffer.from_bytes(b"new")
    asyncio.run(store.set_if_not_exists("zarr.json", buffer))
    asyncio.run(store.set_if_not_exists("other.json", buffer))
    assert backend.raw_get("zarr.json") == b"old" and backend.raw_get("other.json") == b"new"


def test_exclusive_modes_raise_file_exists(backend: Backend) -> None:
    fs = backend.fs()
    path = f"{backend.container}/x/file"
    fs.pipe_file(path, b"first", mode="create")
    with pytest.raises(FileExistsError):
        fs.pipe_file(path, b"second", mode="create")
    with pytest.raises(FileExistsError):
        fs.open(path, "xb")
    with pytest.raises(FileExistsError):
        fs.put_file(__file__, path, mode="create")
    assert backend.raw_get("x/file") == b"first"


def test_swift_copy_is_server_side(request: pytest.FixtureRequest) -> None:
    backend = make_backend(request, "swift")  # S3's copy is s3fs's CopyObject already
    request.addfinalizer(backend.close)
    fs = backend.fs(faulty=True)
    data = bytes(range(256)) * 4096  # 1 MiB
    fs.pipe_file(f"{backend.container}/src", data)
    before = len(backend.proxy.answered)
    fs.cp_file(f"{backend.container}/src", f"{backend.container}/copies/dst")
    sent = [(m, p) for m, p, _ in backend.proxy.answered[before:]]
    assert backend.raw_get("copies/dst") == data
    assert not any(m == "GET" and p.endswith("/src") for m, p in sent), sent
    assert ("PUT", f"/v1/AUTH_test/{backend.container}/copies/dst") in sent
    with pytest.raises(FileNotFoundError):
        fs.cp_file(f"{backend.container}/missing", f"{backend.container}/copies/none")


@pytest.fixture(scope="module")
def small_swift(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwiftServer]:
    """A Swift taking at most 1 MiB in one piece: larger objects are SLOs."""
    with (
        memory_dir(tmp_path_factory, "smallcopy") as base,
        SwiftServer(base / "swift", max_file_size=MiB) as server,
    ):
        yield server


def test_swift_copy_of_large_objects(swift_server: SwiftServer, small_swift: SwiftServer) -> None:
    data = bytes(range(256)) * (10 * 1024)  # 2.5 MiB
    # An SLO the cluster could take in one piece: Swift copies its content server-side.
    fs = SwiftFileSystem(
        authurl=swift_server.auth_url,
        user="test:tester",
        key="testing",
        segment_size=MiB // 2,
        skip_instance_cache=True,
    )
    # Larger than the cluster takes in one piece: copied segment by segment, as a new SLO.
    small = SwiftFileSystem(
        authurl=small_swift.auth_url,
        user="test:tester",
        key="testing",
        skip_instance_cache=True,
    )
    for each in (fs, small):
        container = f"copy-{uuid.uuid4().hex[:8]}"
        each.pipe_file(f"{container}/src", data)
        assert each.info(f"{container}/src")["slo"]
        each.cp_file(f"{container}/src", f"{container}/dst")
        each.rm(f"{container}/src")  # the copy keeps no reference to the source's segments
        assert each.cat_file(f"{container}/dst") == data
        each.rm(container, recursive=True)
