"""xarray: ``to_zarr`` then ``open_zarr(...).load()`` of a 3-variable 1000 x 1000 float32
dataset (chunks 250 x 250, zarr's default codecs), through each way to each backend."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from ._arrays import close_store, zarr_config
from ._measure import Row, Sample, measure, run_rounds
from ._servers import BenchServers
from .s3 import at, obstore_store, s3fs_options, static_keys
from .swift import swiftspec_fs, swiftspec_url

SHAPE = (1000, 1000)
CHUNKS = (250, 250)


def dataset() -> xr.Dataset:
    rng = np.random.default_rng(11)
    dims = ("y", "x")
    data = {v: (dims, rng.random(SHAPE, dtype=np.float32)) for v in ("t", "u", "v")}
    return xr.Dataset(data, coords={"y": np.arange(SHAPE[0]), "x": np.arange(SHAPE[1])})


@dataclass
class Target:
    """Where ``to_zarr``/``open_zarr`` go: a URL with storage options, or a zarr store."""

    name: str
    role: str
    url: Callable[[str], str] | None = None
    options: dict[str, Any] | None = None
    store: Any = None
    note: str = ""

    def write(self, ds: xr.Dataset, path: str) -> None:
        encoding = {v: {"chunks": CHUNKS} for v in ds.data_vars}
        if self.url is not None:
            ds.to_zarr(self.url(path), storage_options=self.options, mode="w", encoding=encoding)
        else:
            ds.to_zarr(self.store, group=path, mode="w", encoding=encoding)

    def read(self, path: str) -> xr.Dataset:
        if self.url is not None:
            return xr.open_zarr(self.url(path), storage_options=self.options).load()
        return xr.open_zarr(self.store, group=path).load()


def swift_targets(servers: BenchServers) -> list[Target]:
    from zarr.storage import FsspecStore
    from zarrswift import SwiftStore as ZarrSwiftStore

    from zarrstores.swift import SwiftStore

    opts = servers.swift_options()
    url = servers.swift_url()
    container = f"xr-{uuid.uuid4().hex[:8]}"
    from ._raw import LoopRunner, RawSwift

    runner, raw = LoopRunner(), RawSwift(url, servers.swift_token)
    runner.run(raw.create_container(container))
    runner.run(raw.close())
    runner.close()
    spec = FsspecStore(swiftspec_fs(url, servers.swift_token), path=swiftspec_url(url, container))
    return [
        Target("swift:// URL", "ours", url=lambda p: f"swift://{container}/url/{p}", options=opts),
        Target("SwiftStore", "ours", store=SwiftStore(container, "store", storage_options=opts)),
        Target(
            "zarr-swiftstore 3.0.2",
            "alt",
            store=ZarrSwiftStore(container, "zs", storage_options=dict(opts)),
        ),
        Target("swiftspec 0.0.4", "alt", store=spec, note="https:// rewritten to http://"),
    ]


def s3_targets(servers: BenchServers) -> list[Target]:
    from zarrstores.minio import MinioStore

    endpoint, token = servers.s3.endpoint, servers.oidc_token()
    keys = static_keys(servers)
    bucket = servers.new_bucket()
    minio_opts = {"endpoint_url": endpoint, "token": token}
    return [
        Target(
            "minio:// URL", "ours", url=lambda p: f"minio://{bucket}/url/{p}", options=minio_opts
        ),
        Target(
            "MinioStore",
            "ours",
            store=MinioStore(bucket, "store", endpoint_url=endpoint, token=token),
        ),
        Target(
            "s3fs",
            "alt",
            url=lambda p: f"s3://{bucket}/s3fs/{p}",
            options=s3fs_options(keys, *at(servers)),
            note="static keys",
        ),
        Target(
            "obstore", "alt", store=obstore_store(bucket, keys, *at(servers)), note="static keys"
        ),
    ]


def run(servers: BenchServers, *, reps: int, log: Callable[[str], None]) -> list[Row]:
    ds = dataset()
    nbytes = sum(v.nbytes for v in ds.data_vars.values())
    all_rows: list[Row] = []
    plans = [("Swift", swift_targets(servers), lambda: servers.swift_pids())]
    plans.append(("S3", s3_targets(servers), servers.s3_pids))
    with zarr_config(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # consolidated metadata in zarr v3: a known warning
        for backend, targets, pids in plans:
            by_name = {t.name: t for t in targets}
            rows = {
                t.name: [
                    Row(f"xarray {backend} to_zarr", t.name, t.role, nbytes=nbytes, note=t.note),
                    Row(f"xarray {backend} open_zarr().load()", t.name, t.role, nbytes=nbytes),
                ]
                for t in targets
            }
            run_rounds(
                rows,
                lambda name, ds=ds, by_name=by_name, pids=pids: _once(
                    by_name[name], ds, "warmup", pids
                ),
                lambda name, rep, ds=ds, by_name=by_name, pids=pids: _once(
                    by_name[name], ds, f"r{rep}", pids
                ),
                reps=reps,
                log=log,
            )
            for t in targets:
                if t.store is not None:
                    close_store(t.store)
                w, r = rows[t.name]
                if w.ok and r.ok:
                    log(f"  xarray {backend} {t.name}: {w.seconds:.2f} s, {r.seconds:.2f} s")
            all_rows += [row for pair in rows.values() for row in pair]
    return all_rows


def _once(t: Target, ds: xr.Dataset, path: str, pids: Callable[[], Any]) -> list[Sample]:
    with measure(pids) as w:
        t.write(ds, path)
    with measure(pids) as r:
        back = t.read(path)
    xr.testing.assert_equal(back, ds)
    return [w.sample, r.sample]  # type: ignore[list-item]
