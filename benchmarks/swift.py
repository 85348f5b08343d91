"""Swift: the array round through our store, ``swift://``, zarr-swiftstore, swiftspec and a
raw client; again through a 20 ms round-trip delay; clearing a 10,000-object store, and a
smaller one through the delay (one DELETE after the other pays the round trip each time)."""

from __future__ import annotations

import functools
import importlib.util
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from zarr.abc.store import Store
from zarr.core.sync import sync
from zarr.storage import FsspecStore

from ._arrays import Contender, close_store, run_array, zarr_alone
from ._measure import Row, measure
from ._raw import LoopRunner, RawSwift
from ._servers import BenchServers

SWIFTSPEC_NOTE = (
    "swiftspec builds https:// URLs only: run through its get_client hook with an aiohttp "
    "session that rewrites them to http://; its module loaded without the package __init__, "
    "which would take over swift:// from ours"
)
SWIFTSTORE_NOTE = "swiftclient in asyncio.to_thread (default pool: min(32, cores + 4) threads)"


class _HttpSession:
    """An aiohttp session for swiftspec that sends its https:// URLs to the http:// server,
    with ``prefix`` in front of ``/v1`` (Ceph RGW serves Swift at ``/swift/v1``)."""

    def __init__(self, session: aiohttp.ClientSession, prefix: str = "") -> None:
        self._session = session
        self._prefix = prefix

    def _http(self, url: Any) -> str:
        host, _, path = str(url).removeprefix("https://").partition("/")
        return f"http://{host}{self._prefix}/{path}"

    def get(self, url: Any, **kw: Any) -> Any:
        return self._session.get(self._http(url), **kw)

    def put(self, url: Any, **kw: Any) -> Any:
        return self._session.put(self._http(url), **kw)

    def head(self, url: Any, **kw: Any) -> Any:
        return self._session.head(self._http(url), **kw)

    def delete(self, url: Any, **kw: Any) -> Any:
        return self._session.delete(self._http(url), **kw)

    async def close(self) -> None:
        await self._session.close()

    @property
    def closed(self) -> bool:
        return self._session.closed


async def http_client(loop: Any = None, prefix: str = "", **kwargs: Any) -> _HttpSession:
    """swiftspec's ``get_client`` hook."""
    return _HttpSession(aiohttp.ClientSession(**kwargs), prefix)


def _split(storage_url: str) -> tuple[str, str, str]:
    """(host, prefix before ``/v1``, account): ``http://h/swift/v1/AUTH_test`` gives
    ``("h", "/swift", "AUTH_test")``."""
    host, _, path = storage_url.removeprefix("http://").partition("/")
    prefix, _, account = f"/{path}".partition("/v1/")
    return host, prefix, account


@functools.cache
def _swiftspec_class() -> Any:
    """swiftspec's filesystem class, loaded from its module alone: the package's
    ``__init__`` registers it as ``swift://`` in fsspec, where ours is."""
    spec = importlib.util.find_spec("swiftspec")
    assert spec is not None and spec.origin is not None, "pip install swiftspec==0.0.4"
    core = importlib.util.spec_from_file_location(
        "_swiftspec_core", Path(spec.origin).parent / "core.py"
    )
    assert core is not None and core.loader is not None
    module = importlib.util.module_from_spec(core)
    core.loader.exec_module(module)
    return module.SWIFTFileSystem


def swiftspec_fs(storage_url: str, token: str) -> Any:
    """swiftspec's filesystem for the account at ``storage_url`` (http), pre-authenticated;
    a path before ``/v1`` (RGW's ``/swift``) is added by its HTTP session."""
    host, prefix, account = _split(storage_url)
    return _swiftspec_class()(
        asynchronous=True,
        auth=[{"url": f"https://{host}/v1/{account}", "token": token}],
        get_client=functools.partial(http_client, prefix=prefix),
        skip_instance_cache=True,
    )


def swiftspec_url(storage_url: str, container: str) -> str:
    """``swift://host/AUTH_x/container``: swiftspec's URL of a container."""
    host, _, account = _split(storage_url)
    return f"swift://{host}/{account}/{container}"


class _RawArrays:
    """The raw client doing the array round's PUTs and GETs in ``container``."""

    def __init__(self, runner: LoopRunner, client: RawSwift, container: str) -> None:
        self.runner, self.client, self.container = runner, client, container

    def write(self, items: list[tuple[str, bytes]]) -> None:
        self.runner.run(self.client.put_all(self.container, items))

    def read(self, names: list[str]) -> list[bytes]:
        return self.runner.run(self.client.get_all(self.container, names))

    def close(self) -> None:
        self.runner.run(self.client.close())


def contenders(
    servers: BenchServers, runner: LoopRunner, *, delayed: bool = False
) -> list[Contender]:
    """The five ways to the same Swift account, each in a container of its own."""
    from zarrswift import SwiftStore as ZarrSwiftStore

    from zarrstores.swift import SwiftStore

    opts = servers.swift_options(delayed=delayed)
    url = servers.swift_url(delayed=delayed)
    raw = RawSwift(url, servers.swift_token)
    tag = uuid.uuid4().hex[:6]
    names = {k: f"{k}-{tag}" for k in ("ours", "fs", "zs", "spec", "raw")}
    for container in names.values():
        runner.run(raw.create_container(container))

    def spec_store() -> Store:
        fs = swiftspec_fs(url, servers.swift_token)
        return FsspecStore(fs, path=swiftspec_url(url, names["spec"]))

    return [
        Contender(
            "SwiftStore",
            "ours",
            lambda: SwiftStore(names["ours"], storage_options=opts),
            close=close_store,
        ),
        Contender(
            "swift:// FsspecStore",
            "ours",
            lambda: FsspecStore.from_url(f"swift://{names['fs']}", storage_options=opts),
            close=close_store,
        ),
        Contender(
            "zarr-swiftstore 3.0.2",
            "alt",
            lambda: ZarrSwiftStore(names["zs"], storage_options=dict(opts)),
            note=SWIFTSTORE_NOTE,
        ),
        Contender("swiftspec 0.0.4", "alt", spec_store, note=SWIFTSPEC_NOTE, close=close_store),
        Contender(
            "raw aiohttp",
            "ceiling",
            raw=lambda: _RawArrays(runner, raw, names["raw"]),
            note="16 PUTs/GETs in flight, token header only",
            close=lambda made: made.close(),
        ),
    ]


def run_arrays(
    servers: BenchServers, *, chunks: int, reps: int, delayed: bool, log: Callable[[str], None]
) -> list[Row]:
    runner = LoopRunner()
    label = "Swift +20 ms RTT" if delayed else "Swift"
    if servers.server_name:
        label += f" on {servers.server_name}"
    reference = [] if delayed else [zarr_alone()]
    try:
        return run_array(
            label,
            contenders(servers, runner, delayed=delayed) + reference,
            chunks=chunks,
            reps=reps,
            pids=lambda: servers.swift_pids(delayed=delayed),
            log=log,
        )
    finally:
        runner.close()


# -- clearing a store -------------------------------------------------------------------------


STORES = 5
"""The shared container holds this many stores (prefixes ``s0``...), listed whole by the
listing round, then cleared one per contender by the clearing round."""


def seed(
    servers: BenchServers, runner: LoopRunner, container: str, prefixes: list[str], n: int
) -> None:
    """``n`` tiny objects named like a 2-D array's chunks under each of ``prefixes`` in a
    new ``container``: plain PUTs, 16 at a time (faster here than bulk extract-archive)."""
    raw = RawSwift(servers.swift_url(), servers.swift_token)
    items = [(f"{p}/c/{i // 100}/{i % 100}", b"\0\0\0\0") for p in prefixes for i in range(n)]

    async def upload() -> None:
        try:
            await raw.create_container(container)
            await raw.put_all(container, items)
        finally:
            await raw.close()

    runner.run(upload())


def corpus(servers: BenchServers, runner: LoopRunner, per_store: int) -> tuple[str, list[str]]:
    """A container of ``STORES`` stores of ``per_store`` objects each, seeded once per run:
    seeding is the slowest part of both the listing and the clearing round."""
    key = ("swift-corpus", per_store)
    if key not in servers.cache:
        container = f"corpus-{uuid.uuid4().hex[:8]}"
        prefixes = [f"s{i}" for i in range(STORES)]
        seed(servers, runner, container, prefixes, per_store)
        servers.cache[key] = (container, prefixes)
    return servers.cache[key]


def _clearers(
    servers: BenchServers, runner: LoopRunner, *, delayed: bool = False
) -> list[tuple[str, str, Any, str]]:
    """(name, role, clear(container, prefix), note) for each contender (through the delay
    proxy: ours, zarr-swiftstore and the raw client)."""
    from zarrswift import SwiftStore as ZarrSwiftStore

    from zarrstores.swift import SwiftFileSystem, SwiftStore

    opts = servers.swift_options(delayed=delayed)
    url = servers.swift_url(delayed=delayed)

    def ours(container: str, prefix: str) -> None:
        sync(SwiftStore(container, prefix, storage_options=opts).clear())

    def fs(container: str, prefix: str) -> None:
        swift_fs = SwiftFileSystem(skip_instance_cache=True, **opts)
        swift_fs.rm(f"{container}/{prefix}", recursive=True)

    def zs(container: str, prefix: str) -> None:
        sync(ZarrSwiftStore(container, prefix, storage_options=dict(opts)).clear())

    def spec(container: str, prefix: str) -> None:
        fs = swiftspec_fs(url, servers.swift_token)
        sync(fs._rm(f"{swiftspec_url(url, container)}/{prefix}", recursive=True))

    def raw(container: str, prefix: str) -> None:
        client = RawSwift(url, servers.swift_token)

        async def clear() -> None:
            names = await client.list_all(container, prefix + "/")
            await client.bulk_delete(container, names, per_request=-(-len(names) // 16))
            await client.close()

        runner.run(clear())

    everyone = [
        ("SwiftStore.clear()", "ours", ours, ""),
        ("swift:// fs.rm(recursive=True)", "ours", fs, ""),
        ("zarr-swiftstore clear()", "alt", zs, "zarr's default: one DELETE after the other"),
        ("swiftspec rm(recursive=True)", "alt", spec, "fsspec's batches of concurrent DELETEs"),
        (
            "raw list + 16 bulk deletes",
            "ceiling",
            raw,
            "the listing, then 16 bulk-delete POSTs in parallel (the server deletes 2 at a time "
            "per POST: Swift's default delete_concurrency)",
        ),
    ]
    if delayed:
        return [c for c in everyone if c[2] in (ours, zs, raw)]
    return everyone


def run_clear(
    servers: BenchServers, *, objects: int, log: Callable[[str], None], delayed: bool = False
) -> list[Row]:
    """Each contender clears one store of ``objects`` objects (once: clearing destroys what
    it measures, and seeding is slow); ``delayed``: through the 20 ms delay proxy, in a
    container seeded for it."""
    runner = LoopRunner()
    rows = []
    counter = RawSwift(servers.swift_url(), servers.swift_token)
    clearers = _clearers(servers, runner, delayed=delayed)
    try:
        if delayed:
            container = f"clear-{uuid.uuid4().hex[:8]}"
            prefixes = [f"s{i}" for i in range(len(clearers))]
            seed(servers, runner, container, prefixes, objects)
        else:
            container, prefixes = corpus(servers, runner, objects)
        label = "Swift +20 ms RTT clear" if delayed else "Swift clear"
        for (name, role, clear, note), prefix in zip(clearers, prefixes, strict=False):
            row = Row(
                f"{label} a store of {objects:,} objects",
                name,
                role,  # type: ignore[arg-type]
                note=note,
                requests=objects,
                unit="objects/s",
            )
            rows.append(row)
            try:
                with measure(lambda: servers.swift_pids(delayed=delayed)) as t:
                    clear(container, prefix)
            except Exception as e:
                row.failed = f"{type(e).__name__}: {e}".splitlines()[0][:160]
                log(f"  ! {name} failed: {row.failed}")
                continue
            row.samples.append(t.sample)  # type: ignore[arg-type]
            left = len(runner.run(counter.list_all(container, prefix + "/")))
            row.extra["objects left"] = f"{left:,}"
            log(f"  {label.lower()} {name}: {row.seconds:.2f} s, {left} left")
    finally:
        runner.run(counter.close())
        runner.close()
    return rows
