"""Metadata: the HTTP requests ``xr.open_zarr`` makes on a consolidated 50-variable dataset,
counted by a proxy between client and server (by method; ours include their STS exchange)."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr

from ._arrays import close_store, zarr_config
from ._measure import Row
from ._proxy import CountingProxy
from ._raw import LoopRunner, RawSwift
from ._servers import BenchServers
from .s3 import obstore_store, s3fs_options, static_keys
from .swift import swiftspec_fs, swiftspec_url

VARIABLES = 50


def dataset() -> xr.Dataset:
    """50 small variables on (y, x), with two index coordinates xarray reads when opening."""
    rng = np.random.default_rng(3)
    data = {f"var{i:02d}": (("y", "x"), rng.random((20, 30), dtype=np.float32)) for i in range(50)}
    return xr.Dataset(data, coords={"y": np.arange(20), "x": np.arange(30)})


Opener = Callable[[], xr.Dataset]


def _swift_openers(servers: BenchServers, proxy: CountingProxy) -> list[tuple[str, str, Opener]]:
    from zarr.storage import FsspecStore
    from zarrswift import SwiftStore as ZarrSwiftStore

    from zarrstores.swift import SwiftStore

    container = f"meta-{uuid.uuid4().hex[:8]}"
    runner, raw = LoopRunner(), RawSwift(servers.swift_url(), servers.swift_token)
    runner.run(raw.create_container(container))
    runner.run(raw.close())
    runner.close()
    dataset().to_zarr(f"swift://{container}/ds", storage_options=servers.swift_options())

    url = f"http://127.0.0.1:{proxy.port}/v1/AUTH_test"
    opts = {"preauthurl": url, "preauthtoken": servers.swift_token}

    def spec() -> xr.Dataset:
        fs = swiftspec_fs(url, servers.swift_token)
        return _open_store(FsspecStore(fs, path=swiftspec_url(url, container) + "/ds"))

    return [
        (
            "swift:// URL",
            "ours",
            lambda: xr.open_zarr(f"swift://{container}/ds", storage_options=opts),
        ),
        (
            "SwiftStore",
            "ours",
            lambda: _open_store(SwiftStore(container, "ds", storage_options=opts)),
        ),
        (
            "zarr-swiftstore 3.0.2",
            "alt",
            lambda: _open_store(ZarrSwiftStore(container, "ds", storage_options=dict(opts))),
        ),
        ("swiftspec 0.0.4", "alt", spec),
    ]


def _s3_openers(servers: BenchServers, proxy: CountingProxy) -> list[tuple[str, str, Opener]]:
    from zarrstores.minio import MinioStore

    bucket = servers.new_bucket()
    token = servers.oidc_token()
    direct = {"endpoint_url": servers.s3.endpoint, "token": token}
    dataset().to_zarr(f"minio://{bucket}/ds", storage_options=direct)

    endpoint = f"http://127.0.0.1:{proxy.port}"
    keys = static_keys(servers)
    via_proxy = {"endpoint_url": endpoint, "token": token}
    s3fs_opts = s3fs_options(keys, endpoint, servers.s3.region)

    def obstore() -> xr.Dataset:
        return _open_store(obstore_store(bucket, keys, endpoint, servers.s3.region, prefix="ds"))

    return [
        (
            "minio:// URL",
            "ours",
            lambda: xr.open_zarr(f"minio://{bucket}/ds", storage_options=via_proxy),
        ),
        (
            "MinioStore",
            "ours",
            lambda: _open_store(MinioStore(bucket, "ds", endpoint_url=endpoint, token=token)),
        ),
        ("s3fs", "alt", lambda: xr.open_zarr(f"s3://{bucket}/ds", storage_options=s3fs_opts)),
        ("obstore", "alt", obstore),
    ]


def _open_store(store: Any) -> xr.Dataset:
    try:
        return xr.open_zarr(store)
    finally:
        close_store(store)


def run(servers: BenchServers, *, log: Callable[[str], None]) -> list[Row]:
    rows: list[Row] = []
    plans = [
        ("Swift", servers.swift.proxy_url.removeprefix("http://"), _swift_openers),
        ("S3", servers.s3.endpoint.removeprefix("http://"), _s3_openers),
    ]
    with zarr_config(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # consolidated metadata in zarr v3: a known warning
        for backend, target, openers in plans:
            proxy = CountingProxy(target)
            try:
                for name, role, open_ in openers(servers, proxy):
                    row = Row(
                        f"Metadata: open_zarr, {backend}, consolidated, {VARIABLES} variables",
                        name,
                        role,  # type: ignore[arg-type]
                    )
                    proxy.reset()
                    try:
                        ds = open_()
                        if len(ds.data_vars) != VARIABLES:
                            raise AssertionError(f"{len(ds.data_vars)} variables opened")
                    except Exception as e:
                        row.failed = f"{type(e).__name__}: {e}".splitlines()[0][:160]
                        log(f"  ! meta {backend} {name} failed: {row.failed}")
                    row.extra["requests"] = str(proxy.total)
                    row.extra["by method"] = ", ".join(
                        f"{m} {n}" for m, n in sorted(proxy.counts.items())
                    )
                    rows.append(row)
                    log(f"  meta {backend} {name}: {proxy.total} ({row.extra['by method']})")
            finally:
                proxy.stop()
    return rows
