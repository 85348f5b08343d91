"""``python -m benchmarks.files [--mib 200] [--reps 3]``: netCDF files on both backends.

Write: ``ds.to_netcdf(fs.open(url, "wb"), engine="h5netcdf")`` against writing the file
locally and uploading it with ``fs.put_file`` (goal: >= 0.9x). Read: 1% of one variable with
``xr.open_dataset(fs.open(url, ...), engine="h5netcdf")`` under fsspec's cache types and block
sizes, against downloading the whole file; bytes and requests counted at a proxy in front of
the server (``FaultProxy``), so every byte the client received is counted.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from zarrstores.devserver.faultproxy import FaultProxy
from zarrstores.minio import MinioFileSystem
from zarrstores.swift import SwiftFileSystem

from ._measure import median_seconds
from ._servers import BenchServers

MiB = 1 << 20
VARIABLES = ("tas", "pr", "ua", "va")
COLS = 1024
READS: dict[str, dict[str, Any]] = {
    "default (smallblocks 1 MiB)": {},
    "none": {"cache_type": "none"},
    "readahead 1 MiB": {"cache_type": "readahead", "block_size": MiB},
    "readahead 32 MiB": {"cache_type": "readahead", "block_size": 32 * MiB},
    "blockcache 1 MiB": {"cache_type": "blockcache", "block_size": MiB},
    "blockcache 4 MiB": {"cache_type": "blockcache", "block_size": 4 * MiB},
}


def dataset(mib: int) -> xr.Dataset:
    """Four float64 variables of ``mib / 4`` MiB each (time x 1024)."""
    rows = mib * MiB // len(VARIABLES) // 8 // COLS
    rng = np.random.default_rng(5)
    data = {v: (("time", "x"), rng.standard_normal((rows, COLS))) for v in VARIABLES}
    return xr.Dataset(data, coords={"time": np.arange(rows), "x": np.arange(COLS)})


def one_percent(ds: xr.Dataset) -> np.ndarray:
    """1% of one variable: the first rows of ``tas`` (0.25% of the file)."""
    return ds["tas"][: max(1, ds.sizes["time"] // 100)].values


def one_variable(ds: xr.Dataset) -> np.ndarray:
    """All of ``tas`` (a quarter of the file)."""
    return ds["tas"].values


@contextmanager
def counted(proxy: FaultProxy) -> Iterator[dict[str, int]]:
    """Requests and response bytes passing ``proxy`` during the block."""
    requests, received = proxy.requests, proxy.bytes_received
    out: dict[str, int] = {}
    yield out
    out["requests"] = proxy.requests - requests
    out["bytes"] = proxy.bytes_received - received


def filesystems(servers: BenchServers) -> dict[str, tuple[Any, Any, FaultProxy, str]]:
    """Per backend: a filesystem straight to the server, one through a counting proxy, the
    proxy, and a container/bucket."""
    out = {}
    swift_proxy = FaultProxy(servers.swift.proxy_url).start()
    swift_urls = (servers.swift_url(), f"{swift_proxy.url}/v1/AUTH_test")
    direct, counted = (
        SwiftFileSystem(preauthurl=url, preauthtoken=servers.swift_token, skip_instance_cache=True)
        for url in swift_urls
    )
    direct.mkdir("files")
    out["swift"] = (direct, counted, swift_proxy, "files")
    s3_proxy = FaultProxy(servers.s3.endpoint).start()
    direct, counted = (
        MinioFileSystem(endpoint_url=url, token=servers.oidc_token(), skip_instance_cache=True)
        for url in (servers.s3.endpoint, s3_proxy.url)
    )
    out["s3"] = (direct, counted, s3_proxy, servers.new_bucket())
    return out


def bench_write(fs: Any, where: str, ds: xr.Dataset, reps: int, scratch: Path) -> dict[str, float]:
    def through_file() -> None:
        with fs.open(f"{where}/w.nc", "wb") as f:
            ds.to_netcdf(f, engine="h5netcdf")

    def local_then_put() -> None:
        local = scratch / "w.nc"
        ds.to_netcdf(local, engine="h5netcdf")
        fs.put_file(str(local), f"{where}/p.nc")
        local.unlink()

    # Alternated, so that both see the same load on a shared machine.
    ours, baseline = [], []
    for _ in range(reps):
        ours.append(median_seconds(1, through_file))
        baseline.append(median_seconds(1, local_then_put))
    mine, theirs = statistics.median(ours), statistics.median(baseline)
    return {"fs.open": mine, "local+put_file": theirs, "ratio": theirs / mine}


def bench_read(
    fs: Any, proxy: FaultProxy, where: str, ds: xr.Dataset, reps: int, scratch: Path
) -> list[tuple[str, float, int, int]]:
    path = f"{where}/r.nc"
    with fs.open(path, "wb") as f:
        ds.to_netcdf(f, engine="h5netcdf")
    rows = []
    for part in (one_percent, one_variable):
        expected = part(ds)
        for name, options in READS.items():

            def read(
                options: dict[str, Any] = options,
                part: Callable[[xr.Dataset], np.ndarray] = part,
                expected: np.ndarray = expected,
            ) -> None:
                with fs.open(path, **options) as f, xr.open_dataset(f, engine="h5netcdf") as back:
                    np.testing.assert_array_equal(part(back), expected)

            with counted(proxy) as count:
                read()
            label = f"{part.__name__}, {name}"
            rows.append((label, median_seconds(reps, read), count["requests"], count["bytes"]))
    expected = one_percent(ds)

    def whole() -> None:
        local = scratch / "r.nc"
        fs.get_file(path, str(local))
        with xr.open_dataset(local, engine="h5netcdf") as back:
            np.testing.assert_array_equal(one_percent(back), expected)
        local.unlink()

    with counted(proxy) as count:
        whole()
    seconds = median_seconds(reps, whole)
    rows.append(("download whole file", seconds, count["requests"], count["bytes"]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=200, help="size of the netCDF file")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", choices=("read", "write"), default=None)
    parser.add_argument("--out", type=Path, help="also write the results here (markdown)")
    args = parser.parse_args()
    ds = dataset(args.mib)
    lines: list[str] = []

    def report(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    with BenchServers() as servers, tempfile.TemporaryDirectory() as scratch:
        for backend, (direct, counted_fs, proxy, where) in filesystems(servers).items():
            try:
                if args.only != "read":
                    w = bench_write(direct, where, ds, args.reps, Path(scratch))
                    report(
                        f"{backend} write {args.mib} MiB: fs.open {w['fs.open']:.2f} s, "
                        f"local+put_file {w['local+put_file']:.2f} s, ratio {w['ratio']:.2f}x"
                    )
                if args.only != "write":
                    rows = bench_read(counted_fs, proxy, where, ds, args.reps, Path(scratch))
                    size = direct.size(f"{where}/r.nc")
                    for name, seconds, requests, received in rows:
                        report(
                            f"{backend} read ({name}): {seconds:.3f} s, "
                            f"{requests} requests, {received / MiB:.2f} MiB "
                            f"({100 * received / size:.2f}% of {size / MiB:.0f} MiB)"
                        )
            finally:
                proxy.stop()
    if args.out:
        only = f" --only {args.only}" if args.only else ""
        command = f"python -m benchmarks.files --mib {args.mib} --reps {args.reps}{only}"
        body = "\n".join(lines)
        header = f"# `{command}`\n\nMedians of {args.reps} runs (times: a shared 2-core machine).\n"
        args.out.write_text(f"{header}\n```text\n{body}\n```\n")


if __name__ == "__main__":
    main()
