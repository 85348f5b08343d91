"""Listing a store of many objects (keys of a 2-D zarr array: ``c/<i>/<j>``): how long, and
whether every key came back. Seeded once per backend, listed by every contender in turn."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from zarr.core.sync import sync

from ._arrays import close_store
from ._measure import Row, Sample, measure, run_rounds
from ._raw import LoopRunner, RawS3, RawSwift
from ._servers import BenchServers
from .s3 import at, obstore_store, raw_client, static_keys
from .swift import STORES, corpus, swiftspec_fs, swiftspec_url

Lister = Callable[[], int]


async def _count(keys: AsyncIterator[Any]) -> int:
    return sum([1 async for _ in keys])


def _swift_listers(
    servers: BenchServers, runner: LoopRunner, n: int
) -> list[tuple[str, str, Lister]]:
    from zarrswift import SwiftStore as ZarrSwiftStore

    from zarrstores.swift import SwiftFileSystem, SwiftStore

    container, _ = corpus(servers, runner, n // STORES)
    opts = servers.swift_options()
    url = servers.swift_url()

    def ours() -> int:
        store = SwiftStore(container, storage_options=opts)
        try:
            return sync(_count(store.list()))
        finally:
            close_store(store)

    def fs() -> int:
        return len(SwiftFileSystem(skip_instance_cache=True, **opts).find(container))

    def zs() -> int:
        return sync(_count(ZarrSwiftStore(container, storage_options=dict(opts)).list()))

    def spec() -> int:
        fs = swiftspec_fs(url, servers.swift_token)
        try:
            return len(sync(fs._find(swiftspec_url(url, container))))
        finally:
            sync(fs._session.close()) if fs._session is not None else None

    def raw() -> int:
        client = RawSwift(url, servers.swift_token)

        async def go() -> int:
            try:
                return len(await client.list_all(container))
            finally:
                await client.close()

        return runner.run(go())

    return [
        ("SwiftStore.list()", "ours", ours),
        ("swift:// fs.find()", "ours", fs),
        ("zarr-swiftstore list()", "alt", zs),
        ("swiftspec find()", "alt", spec),
        ("raw paged GETs", "ceiling", raw),
    ]


def _s3_listers(servers: BenchServers, runner: LoopRunner, n: int) -> list[tuple[str, str, Lister]]:
    import obstore
    import s3fs

    from zarrstores.minio import MinioFileSystem, MinioStore

    bucket = servers.new_bucket()
    keys = static_keys(servers)
    seeder = raw_client(servers, keys)
    items = [(f"data/c/{i // 100}/{i % 100}", b"\0\0\0\0") for i in range(n)]
    runner.run(seeder.put_all(bucket, items))
    runner.run(seeder.close())
    endpoint, token = servers.s3.endpoint, servers.oidc_token()

    def ours() -> int:
        store = MinioStore(bucket, "data", endpoint_url=endpoint, token=token)
        try:
            return sync(_count(store.list()))
        finally:
            close_store(store)

    def fs() -> int:
        mfs = MinioFileSystem(endpoint_url=endpoint, token=token, skip_instance_cache=True)
        return len(mfs.find(f"{bucket}/data"))

    def s3fs_find() -> int:
        fs = s3fs.S3FileSystem(
            **keys,
            endpoint_url=endpoint,
            client_kwargs={"region_name": servers.s3.region},
            skip_instance_cache=True,
        )
        return len(fs.find(f"{bucket}/data"))

    def obs() -> int:
        store = obstore_store(bucket, keys, *at(servers)).store  # type: ignore[attr-defined]
        return sum(len(batch) for batch in obstore.list(store, prefix="data/"))

    def raw() -> int:
        client: RawS3 = raw_client(servers, keys)

        async def go() -> int:
            try:
                return len(await client.list_all(bucket, "data/"))
            finally:
                await client.close()

        return runner.run(go())

    return [
        ("MinioStore.list()", "ours", ours),
        ("minio:// fs.find()", "ours", fs),
        ("s3fs find()", "alt", s3fs_find),
        ("obstore list()", "alt", obs),
        ("raw ListObjectsV2 pages", "ceiling", raw),
    ]


def run(servers: BenchServers, *, objects: int, reps: int, log: Callable[[str], None]) -> list[Row]:
    runner = LoopRunner()
    try:
        swift_listers = _swift_listers(servers, runner, objects)
        rows = _list("Swift", swift_listers, objects, reps, servers.swift_pids, log)
        s3_listers = _s3_listers(servers, runner, objects)
        return rows + _list("S3", s3_listers, objects, reps, servers.s3_pids, log)
    finally:
        runner.close()


def _list(
    backend: str,
    listers: list[tuple[str, str, Lister]],
    objects: int,
    reps: int,
    pids: Callable[[], Any],
    log: Callable[[str], None],
) -> list[Row]:
    """Each lister ``reps`` times; rows with the time and how many keys came back."""
    by_name = {name: fn for name, _, fn in listers}
    found: dict[str, list[int]] = {name: [] for name in by_name}
    rows = {
        name: [
            Row(
                f"List {objects:,} objects, {backend}",
                name,
                role,  # type: ignore[arg-type]
                requests=objects,
                unit="objects/s",
            )
        ]
        for name, role, _ in listers
    }

    def timed(name: str, rep: int) -> list[Sample]:
        with measure(pids) as t:
            count = by_name[name]()
        found[name].append(count)
        return [t.sample]  # type: ignore[list-item]

    run_rounds(rows, lambda name: None, timed, reps=reps, log=log)
    for name, (row,) in rows.items():
        if found[name]:
            row.extra["found"] = f"{min(found[name]):,} / {objects:,}"
            row.extra["complete"] = "yes" if min(found[name]) == objects else "NO"
        if row.samples:
            log(f"  list {backend} {name}: {row.seconds:.2f} s, {row.extra['found']}")
    return [r for (r,) in rows.values()]
