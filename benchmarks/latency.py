"""``python -m benchmarks.latency [--mib N] [--reps N] [--only arrays,open,sweep]``: what users
on a long link wait for, behind the delay proxy at +30 ms round trip, on both backends.

- ``arrays``: write and read an array of 1 MiB chunks, unsharded and sharded (64 chunks a
  shard), whole and its first eighth: ours against zarr's ``ObjectStore`` on obstore and s3fs
  (S3), zarr-swiftstore and swiftspec (Swift). Times through the delay proxy (median); one
  more untimed pass through a counting proxy (no delay) gives requests, bytes and peak memory.
- ``open``: ``xr.open_zarr`` of a consolidated 50-variable dataset: seconds at +30 ms and
  requests.
- ``sweep``: our stores' ``max_concurrency`` against the time of a whole read and write, with
  zarr's ``async.concurrency`` high enough (128) that ours is the limit.

Results go to ``benchmarks/results/latency.md``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
import traceback
import tracemalloc
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.abc.store import Store
from zarr.storage import FsspecStore

from . import meta
from ._arrays import close_store
from ._proxy import CountingProxy, DelayProxy
from ._raw import LoopRunner, RawSwift
from ._servers import BenchServers
from .s3 import obstore_store, s3fs_options, static_keys
from .swift import swiftspec_fs, swiftspec_url

RTT = 0.030
CHUNK_ITEMS = (1 << 20) // 4  # float32: 1 MiB chunks
SHARD_CHUNKS = 64
SWEEP = (8, 16, 32, 64, 128)
RESULTS = Path(__file__).parent / "results" / "latency.md"
MiB = 1 << 20

Factory = Callable[[str], Store]
"""A store for a base address: the storage URL (Swift) or the endpoint (S3)."""


@dataclass
class Way:
    """A contender on one backend."""

    name: str
    role: str  # "ours" or "alt"
    make: Factory


@dataclass
class Result:
    """One contender in one scenario."""

    backend: str
    scenario: str
    way: str
    role: str
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # this process's CPU seconds, all threads
    requests: int = 0
    moved: int = 0
    traced_peak: int = 0
    rss_peak: int = 0
    failed: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")


# -- the links ------------------------------------------------------------------------------
class Links:
    """A delay proxy (+30 ms round trip) and a counting proxy in front of each server."""

    def __init__(self, servers: BenchServers) -> None:
        self.servers = servers
        self.delayed: dict[str, DelayProxy] = {}
        self.counting: dict[str, CountingProxy] = {}
        for name, target in (
            ("swift", servers.swift.proxy_url.removeprefix("http://")),
            ("s3", servers.s3.endpoint.removeprefix("http://")),
        ):
            log = servers.dir / f"delay-{name}.log"
            self.delayed[name] = DelayProxy(target, RTT / 2, log).start()
            self.counting[name] = CountingProxy(target)

    def base(self, backend: str, port: int) -> str:
        root = f"http://127.0.0.1:{port}"
        return f"{root}/v1/AUTH_test" if backend == "swift" else root

    def delayed_base(self, backend: str) -> str:
        return self.base(backend, self.delayed[backend].port)

    def counting_base(self, backend: str) -> str:
        return self.base(backend, self.counting[backend].port)

    def close(self) -> None:
        for proxy in self.delayed.values():
            proxy.stop()
        for counter in self.counting.values():
            counter.stop()


def swift_spec(servers: BenchServers) -> dict[str, Any]:
    """What the Swift contenders need, as plain data (a process of its own can rebuild them):
    the token and a new container each."""
    token = servers.swift_token
    tag = uuid.uuid4().hex[:6]
    names = {k: f"lat-{k}-{tag}" for k in ("ours", "fs", "zs", "spec")}
    runner, raw = LoopRunner(), RawSwift(servers.swift_url(), token)
    for container in names.values():
        runner.run(raw.create_container(container))
    runner.run(raw.close())
    runner.close()
    return {"token": token, "names": names}


def swift_ways(servers: BenchServers, **ours: Any) -> list[Way]:
    return swift_ways_from(swift_spec(servers), **ours)


def swift_ways_from(spec: dict[str, Any], **ours: Any) -> list[Way]:
    from zarrswift import SwiftStore as ZarrSwiftStore

    from zarrstores.swift import SwiftStore

    token, names = spec["token"], spec["names"]

    def opts(url: str) -> dict[str, Any]:
        return {"preauthurl": url, "preauthtoken": token}

    return [
        Way("SwiftStore", "ours", lambda u: SwiftStore(names["ours"], "", {**opts(u), **ours})),
        Way(
            "swift:// URL",
            "ours",
            lambda u: FsspecStore.from_url(
                f"swift://{names['fs']}", storage_options={**opts(u), **ours}
            ),
        ),
        Way(
            "zarr-swiftstore", "alt", lambda u: ZarrSwiftStore(names["zs"], storage_options=opts(u))
        ),
        Way(
            "swiftspec",
            "alt",
            lambda u: FsspecStore(swiftspec_fs(u, token), path=swiftspec_url(u, names["spec"])),
        ),
    ]


def s3_spec(servers: BenchServers) -> dict[str, Any]:
    """What the S3 contenders need, as plain data: an OIDC token for ours, the keys of one STS
    exchange for the others, a new bucket each, the region."""
    return {
        "token": servers.oidc_token(),
        "keys": static_keys(servers),
        "buckets": {k: servers.new_bucket() for k in ("ours", "fs", "obs", "s3fs")},
        "region": servers.s3.region,
    }


def s3_ways(servers: BenchServers, **ours: Any) -> list[Way]:
    return s3_ways_from(s3_spec(servers), **ours)


def s3_ways_from(spec: dict[str, Any], **ours: Any) -> list[Way]:
    from zarrstores.minio import MinioStore

    token, keys, buckets = spec["token"], spec["keys"], spec["buckets"]

    def minio_url(u: str) -> Store:
        options = {"endpoint_url": u, "token": token, "skip_instance_cache": True, **ours}
        return FsspecStore.from_url(f"minio://{buckets['fs']}", storage_options=options)

    def s3fs(u: str) -> Store:
        options = s3fs_options(keys, u, spec["region"])
        return FsspecStore.from_url(f"s3://{buckets['s3fs']}", storage_options=options)

    return [
        Way(
            "MinioStore",
            "ours",
            lambda u: MinioStore(buckets["ours"], endpoint_url=u, token=token, **ours),
        ),
        Way("minio:// URL", "ours", minio_url),
        Way(
            "obstore ObjectStore",
            "alt",
            lambda u: obstore_store(buckets["obs"], keys, u, spec["region"]),
        ),
        Way("s3fs", "alt", s3fs),
    ]


WAYS = {"swift": swift_ways_from, "s3": s3_ways_from}


# -- measuring ------------------------------------------------------------------------------
def _rss_reset() -> int:
    """Reset the peak RSS (VmHWM) to the current RSS; returns that RSS in bytes."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status("VmRSS")


def _status(field_name: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    return 0


@contextmanager
def counted(result: Result, proxy: CountingProxy) -> Iterator[None]:
    """Requests, bytes and peak memory (traced Python allocations, RSS) of the block."""
    gc.collect()
    proxy.reset()
    tracemalloc.start()
    before = _rss_reset()
    yield
    result.rss_peak = _status("VmHWM") - before
    result.traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    result.requests = proxy.total
    result.moved = sum(proxy.moved.values())


@dataclass(frozen=True)
class Scenario:
    op: str  # "write" or "read"
    sharded: bool
    region: bool

    def label(self, mib: int) -> str:
        layout = f"sharded ({SHARD_CHUNKS} chunks a shard)" if self.sharded else "unsharded"
        part = f"first 1/8 ({mib // 8} MiB)" if self.region else f"whole ({mib} MiB)"
        return f"{self.op} {layout}, {part}"


SCENARIOS = [
    Scenario(op, sharded, region)
    for sharded in (False, True)
    for region in (False, True)
    for op in ("write", "read")
]


def _array(store: Store, sharded: bool, items: int) -> Any:
    return zarr.create_array(
        store,
        name="sharded" if sharded else "plain",
        shape=(items,),
        chunks=(CHUNK_ITEMS,),
        shards=(CHUNK_ITEMS * SHARD_CHUNKS,) if sharded else None,
        dtype="float32",
        compressors=None,
        filters=None,
        fill_value=0,
        overwrite=True,
    )


def _op(array: Any, scenario: Scenario, data: np.ndarray) -> Callable[[], None]:
    """The timed operation, checking what it read."""
    part = slice(0, len(data) // 8) if scenario.region else slice(None)
    expected = -data[part] if scenario.region else data
    if scenario.op == "write":
        return lambda: array.__setitem__(part, expected)

    def read() -> None:
        if not np.array_equal(array[part], expected):
            raise AssertionError("read back other data than written")

    return read


def run_arrays(
    servers: BenchServers,
    links: Links,
    *,
    mib: int,
    reps: int,
    log: Callable[[str], None],
    backends: tuple[str, ...] = ("swift", "s3"),
    isolate: bool = False,
) -> list[Result]:
    """``isolate``: each contender's timed repetition in a new process (no contender runs in
    memory another one's 1 GiB arrays went through)."""
    data = np.random.default_rng(7).random(mib * CHUNK_ITEMS, dtype=np.float32)
    results: list[Result] = []
    specs = {"swift": swift_spec, "s3": s3_spec}
    for backend in backends:
        spec = specs[backend](servers)
        ways = WAYS[backend](spec)
        table = {
            (s, w.name): Result(backend, s.label(mib), w.name, w.role)
            for s in SCENARIOS
            for w in ways
        }
        results += table.values()
        # Requests, bytes and memory: one untimed pass through the counting proxy.
        for way in ways:
            store = way.make(links.counting_base(backend))
            for sharded in (False, True):
                cells = [table[(s, way.name)] for s in SCENARIOS if s.sharded == sharded]
                _layout(store, sharded, data, cells, log, links.counting[backend])
            close_store(store)
        vacuum = servers.s3_vacuum if backend == "s3" else lambda: None
        vacuum()
        # Times through the delay proxy, contenders interleaved repetition by repetition, the
        # order rotated each time: none always runs right after the same other one (whose
        # writes the server may still be flushing).
        base = links.delayed_base(backend)
        stores = {} if isolate else {w.name: w.make(base) for w in ways}
        for rep in range(reps):
            turn = rep % len(ways)
            for way in ways[turn:] + ways[:turn]:
                if isolate:
                    vacuum()  # what the contender before overwrote, given back before this one
                    _apart(backend, spec, way.name, base, mib, table, log)
                    continue
                for sharded in (False, True):
                    cells = [table[(s, way.name)] for s in SCENARIOS if s.sharded == sharded]
                    _layout(stores[way.name], sharded, data, cells, log)
            vacuum()
            log(f"  {backend} repetition {rep + 1}/{reps} done")
        for store in stores.values():
            close_store(store)
    return results


def _apart(
    backend: str,
    spec: dict[str, Any],
    way: str,
    base: str,
    mib: int,
    table: dict[tuple[Scenario, str], Result],
    log: Callable[[str], None],
) -> None:
    """One timed repetition of ``way`` (both layouts) in a new process (``--child``)."""
    cells = {s.label(mib): table[(s, way)] for s in SCENARIOS}
    layouts = [
        sharded
        for sharded in (False, True)
        if not any(table[(s, way)].failed for s in SCENARIOS if s.sharded == sharded)
    ]
    job = {"backend": backend, "spec": spec, "way": way, "base": base, "mib": mib}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.latency",
            "--child",
            json.dumps(job | {"layouts": layouts}),
        ],
        cwd=Path(__file__).parent.parent,
        capture_output=True,
        text=True,
    )
    if run.returncode:
        log(f"  ! {way} failed in its process: {run.stderr.strip()[-2000:]}")
        for cell in cells.values():
            cell.failed = cell.failed or "its process failed"
        return
    if run.stderr.strip():
        log(run.stderr.strip()[-2000:])
    for label, (seconds, cpu, failed) in json.loads(run.stdout.splitlines()[-1]).items():
        cell = cells[label]
        cell.seconds += seconds
        cell.cpu += cpu
        if failed and not cell.seconds:
            cell.failed = failed


def _child(job: dict[str, Any]) -> None:
    """``--child``: the timed repetition ``_apart`` asks for; its cells as JSON on stdout."""
    way = next(w for w in WAYS[job["backend"]](job["spec"]) if w.name == job["way"])
    data = np.random.default_rng(7).random(job["mib"] * CHUNK_ITEMS, dtype=np.float32)
    store = way.make(job["base"])
    out: dict[str, Any] = {}
    for sharded in job["layouts"]:
        cells = [
            Result(job["backend"], s.label(job["mib"]), way.name, way.role)
            for s in SCENARIOS
            if s.sharded == sharded
        ]
        _layout(store, sharded, data, cells, lambda m: print(m, file=sys.stderr))
        out |= {c.scenario: (c.seconds, c.cpu, c.failed) for c in cells}
    close_store(store)
    print(json.dumps(out))


def _settle() -> None:
    """Untimed, before each timed operation: the servers' files written so far on disk. The
    servers share this machine's disk and CPUs; the kernel would otherwise flush 1 GiB written
    by one operation (or by the contender before) ~30 s later, in the middle of another one."""
    os.sync()


def _layout(
    store: Store,
    sharded: bool,
    data: np.ndarray,
    cells: list[Result],
    log: Callable[[str], None],
    counter: CountingProxy | None = None,
) -> None:
    """The scenarios of one layout in order (write whole first): counted through ``counter``,
    else timed. After a failure the layout's remaining scenarios are marked failed."""
    if any(c.failed for c in cells):
        return
    scenarios = [s for s in SCENARIOS if s.sharded == sharded]
    try:
        array = _array(store, sharded, len(data))
        for s, cell in zip(scenarios, cells, strict=True):
            op = _op(array, s, data)
            if counter is not None:
                with counted(cell, counter):
                    op()
                continue
            _settle()
            c0, t0 = time.process_time(), time.perf_counter()
            op()
            cell.seconds.append(time.perf_counter() - t0)
            cell.cpu.append(time.process_time() - c0)
    except Exception as e:
        message = f"{type(e).__name__}: {e}".splitlines()[0][:160]
        log(f"  ! {cells[0].way} failed: {message}")
        log("".join(traceback.format_exception(e)[-3:]).rstrip())
        for cell in cells:
            if not cell.seconds or counter is not None:
                cell.failed = message


# -- open_zarr ------------------------------------------------------------------------------
def run_open(
    servers: BenchServers, links: Links, *, reps: int, log: Callable[[str], None]
) -> list[Result]:
    results = []
    plans = [("swift", meta._swift_openers), ("s3", meta._s3_openers)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # consolidated metadata in zarr v3: a known warning
        for backend, openers in plans:
            counter = links.counting[backend]
            counts = {}
            for name, _, open_ in openers(servers, counter):
                counter.reset()
                open_()
                counts[name] = counter.total
            for name, role, open_ in openers(servers, links.delayed[backend]):
                scenario = f"open_zarr, consolidated, {meta.VARIABLES} variables"
                result = Result(backend, scenario, name, role, requests=counts.get(name, 0))
                try:
                    for _ in range(reps):
                        t0 = time.perf_counter()
                        ds = open_()
                        result.seconds.append(time.perf_counter() - t0)
                        if len(ds.data_vars) != meta.VARIABLES:
                            raise AssertionError(f"{len(ds.data_vars)} variables opened")
                except Exception as e:
                    result.failed = f"{type(e).__name__}: {e}".splitlines()[0][:160]
                results.append(result)
                log(f"  open {backend} {name}: {result.median:.3f} s, {result.requests} requests")
    return results


# -- the concurrency sweep ------------------------------------------------------------------
def run_sweep(
    servers: BenchServers, links: Links, *, mib: int, reps: int, log: Callable[[str], None]
) -> list[Result]:
    data = np.random.default_rng(7).random(mib * CHUNK_ITEMS, dtype=np.float32)
    results = []
    scenarios = [Scenario("write", False, False), Scenario("read", False, False)]
    with zarr.config.set({"async.concurrency": 128}):
        for backend, ways in (("swift", swift_ways), ("s3", s3_ways)):
            arrays, cells = {}, {}
            for limit in SWEEP:
                way = ways(servers, max_concurrency=limit)[0]
                arrays[limit] = _array(way.make(links.delayed_base(backend)), False, len(data))
                for s in scenarios:
                    label = f"{way.name} max_concurrency={limit}"
                    cells[(limit, s)] = Result(backend, s.label(mib), label, "ours")
            # Limits interleaved repetition by repetition: a change in load hits them alike.
            for _ in range(reps):
                for limit in SWEEP:
                    for s in scenarios:
                        op = _op(arrays[limit], s, data)
                        t0 = time.perf_counter()
                        op()
                        cells[(limit, s)].seconds.append(time.perf_counter() - t0)
            for (limit, s), result in cells.items():
                log(f"  sweep {backend} {limit} {s.op}: {result.median:.3f} s")
            results += sorted(cells.values(), key=lambda r: r.scenario)
            for array in arrays.values():
                close_store(array.store_path.store)
    return results


# -- memory of one large object ------------------------------------------------------------
def run_memory(
    servers: BenchServers, links: Links, *, sizes: tuple[int, ...], log: Callable[[str], None]
) -> list[Result]:
    """Each store's ``get`` of a whole object of each size (MiB): peak memory above the
    object's own size shows the copies a read holds at once (1.0x: one copy)."""
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    results = []
    for backend, ways in (("swift", swift_ways(servers)), ("s3", s3_ways(servers))):
        for size in sizes:
            blob = np.random.default_rng(size).bytes(size * MiB)
            for way in ways:
                result = Result(backend, f"get one {size} MiB object", way.name, way.role)
                store = way.make(links.counting_base(backend))
                try:
                    buffer = default_buffer_prototype().buffer.from_bytes(blob)
                    sync(store.set("big", buffer))
                    del buffer
                    with counted(result, links.counting[backend]):
                        got = sync(store.get("big", default_buffer_prototype()))
                        del got
                except Exception as e:
                    result.failed = f"{type(e).__name__}: {e}".splitlines()[0][:160]
                finally:
                    close_store(store)
                results.append(result)
                log(
                    f"  memory {backend} {way.name} {size} MiB: traced "
                    f"{result.traced_peak / MiB:.0f} MiB, RSS +{result.rss_peak / MiB:.0f} MiB"
                )
    return results


# -- the report -----------------------------------------------------------------------------
def _table(results: list[Result], *, memory: bool) -> list[str]:
    head = ["contender", "median s", "x best other"]
    cpu = any(r.cpu for r in results)
    if cpu:
        head += ["client CPU s"]
    if memory:
        head += ["requests", "MiB moved", "peak traced MiB", "peak RSS +MiB"]
    elif any(r.requests for r in results):
        head += ["requests"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    others = [r.median for r in results if r.role == "alt" and r.seconds and not r.failed]
    best = min(others) if others else None
    for r in results:
        name = r.way + (" *(ours)*" if r.role == "ours" else "")
        if r.failed:
            lines.append(f"| {name} | failed: {r.failed} |" + " |" * (len(head) - 2))
            continue
        timed = f"{r.median:.3f}" if r.seconds else ""
        cells = [name, timed, f"{best / r.median:.2f}x" if best and r.seconds else ""]
        if cpu:
            cells.append(f"{statistics.median(r.cpu):.3f}" if r.cpu else "")
        if memory:
            cells += [
                str(r.requests),
                f"{r.moved / MiB:.1f}",
                f"{r.traced_peak / MiB:.1f}",
                f"{r.rss_peak / MiB:.1f}",
            ]
        elif "requests" in head:
            cells.append(str(r.requests))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def report(
    sections: dict[str, list[Result]], *, mib: int, reps: int, took: float, isolate: bool = False
) -> str:
    from importlib.metadata import version

    versions = ", ".join(
        f"{p} {version(p)}"
        for p in ("zarr", "xarray", "obstore", "aiohttp", "s3fs", "zarr-swiftstore", "swiftspec")
    )
    out = [
        "# Latency benchmark: +30 ms round trip",
        "",
        f"- Command: `python -m benchmarks.latency {' '.join(sys.argv[1:])}`"
        f" ({took / 60:.1f} min; load average at the end, 1/5/15 min:"
        f" {', '.join(f'{x:.1f}' for x in os.getloadavg())})",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {versions}",
        f"- A {mib} MiB array"
        + ("" if mib >= 1024 else " (1 GiB with --reps 1 takes ~11 min on a quiet machine here)")
        + ", 1 MiB float32 chunks, no compression; sharded:"
        f" {SHARD_CHUNKS} chunks a shard. zarr's `async.concurrency` at its default (10) for the"
        " arrays and open_zarr; 128 for the sweep.",
        f"- Times: median of {reps}, through a delay proxy adding {RTT * 1000:.0f} ms per round"
        " trip (no bandwidth limit). `x best other` = the best other contender's time / this"
        " time (>= 1.00x: at least as fast). Client CPU s: median CPU time of this process"
        " (all its threads) in the timed operation; it depends on the load far less than the"
        " wall time. Requests and bytes (both ways): one untimed pass"
        " through a counting proxy without delay. Peak traced = tracemalloc's peak of Python"
        " allocations (obstore's and numpy's own buffers are partly outside it); peak RSS ="
        " the process's high-water mark above its size at the start of the operation.",
        "- Before each timed operation (untimed) the disk is synced: the servers share this"
        " machine's disk, and the kernel would otherwise write back one operation's 1 GiB ~30 s"
        " later, during whichever operation runs then. SeaweedFS is vacuumed before each"
        " contender (isolated) or repetition.",
        "- swiftspec 0.0.4 cannot read part of a shard: its `_cat_file` asserts `start >= 0`,"
        " and zarr reads a shard's index as the last bytes (a negative start). A region of"
        " whole shards works: zarr then reads each shard in one request, index included.",
        *(
            [
                "- `--isolate`: each contender's timed repetition ran in a new process (CPU: that"
                " process's), so none ran in memory that another's 1 GiB arrays went through."
            ]
            if isolate
            else []
        ),
        "- Ours authenticate through the same link (STS exchange, S3); the others get a"
        " pre-authenticated token (Swift) or the keys of one STS exchange (S3). open_zarr makes"
        " a new store each time: `MinioStore` shares the STS keys of the `minio://` filesystem"
        " opened before it with the same token, so its count has no exchange (the URL's has).",
        "",
    ]
    for section, results in sections.items():
        groups: dict[tuple[str, str], list[Result]] = {}
        for r in results:
            groups.setdefault((r.backend, r.scenario), []).append(r)
        out.append(f"## {section}")
        out.append("")
        for (backend, scenario), rows in groups.items():
            out.append(f"### {'Swift' if backend == 'swift' else 'S3'}: {scenario}")
            out.append("")
            out += _table(rows, memory=section != "open_zarr" and not section.startswith("Conc"))
            out.append("")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=128, help="array size in MiB (default 128)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", default="arrays,open,sweep")
    parser.add_argument("--backends", default="swift,s3", help="arrays of these only")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--isolate", action="store_true", help="each contender's timed arrays in a new process"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(json.loads(args.child))
        return
    only = set(args.only.split(","))
    started = time.perf_counter()
    sections: dict[str, list[Result]] = {}
    with BenchServers() as servers:
        links = Links(servers)
        try:
            if "arrays" in only:
                print("Arrays")
                sections["Arrays"] = run_arrays(
                    servers,
                    links,
                    mib=args.mib,
                    reps=args.reps,
                    log=print,
                    backends=tuple(args.backends.split(",")),
                    isolate=args.isolate,
                )
            if "open" in only:
                print("open_zarr")
                sections["open_zarr"] = run_open(servers, links, reps=args.reps, log=print)
            if "memory" in only:
                print("Memory of one large object")
                sections["Memory: get of one object"] = run_memory(
                    servers, links, sizes=(64, 256), log=print
                )
            if "sweep" in only:
                print("Concurrency sweep")
                sections["Concurrency sweep (zarr async.concurrency 128)"] = run_sweep(
                    servers, links, mib=args.mib, reps=args.reps, log=print
                )
        finally:
            links.close()
    took = time.perf_counter() - started
    text = report(sections, mib=args.mib, reps=args.reps, took=took, isolate=args.isolate)
    args.output.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
