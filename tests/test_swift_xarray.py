"""What zarr-swiftstore users do in its notebook, with ``SwiftStore`` and with ``swift://``
URLs: zarr groups, xarray round trips, appends, region and dask writes, sharded reads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

from zarrstores.auth import KeystoneAuth, TempAuth
from zarrstores.devserver.swift import SwiftServer
from zarrstores.swift import SwiftStore

pytestmark = pytest.mark.filterwarnings("ignore:Consolidated metadata:UserWarning")


@pytest.fixture(scope="module", params=["tempauth", "keystone", "rgw"])
def opts(request: pytest.FixtureRequest, swift_server: SwiftServer) -> dict[str, Any]:
    """storage_options for both kinds of auth (one login per module and kind), and v1 auth
    on Ceph RGW."""
    if request.param == "rgw":
        rgw = request.getfixturevalue("rgw_server")
        return {"authurl": rgw.auth_url, "user": "test:tester", "key": "testing"}
    if request.param == "tempauth":
        return {"authurl": swift_server.auth_url, "user": "test:tester", "key": "testing"}
    env = swift_server.os_env("password")
    return {
        "auth": KeystoneAuth(
            env["OS_AUTH_URL"],
            username=env["OS_USERNAME"],
            password=env["OS_PASSWORD"],
            project_name=env["OS_PROJECT_NAME"],
            user_domain_name="Default",
            project_domain_name="Default",
        )
    }


@pytest.fixture(scope="module", params=["swift", "rgw"])
def tempauth(request: pytest.FixtureRequest) -> dict[str, Any]:
    """v1 auth on OpenStack Swift, then on Ceph RGW."""
    server = request.getfixturevalue("swift_server" if request.param == "swift" else "rgw_server")
    return {"auth": TempAuth(server.auth_url, "test:tester", "testing")}


def dataset(times: int = 4, start: str = "2024-01-01") -> xr.Dataset:
    rng = np.random.default_rng(42)
    return xr.Dataset(
        {"temp": (("time", "lat", "lon"), rng.random((times, 6, 8)))},
        coords={
            "time": pd.date_range(start, periods=times, freq="D"),
            "lat": np.linspace(-50, 50, 6),
            "lon": np.linspace(0, 350, 8),
        },
        attrs={"source": "zarrstores tests"},
    )


def test_notebook_flow(opts: dict[str, Any], swift_container: str) -> None:
    """zarr-swiftstore's README/notebook, unchanged but for the import."""
    store = SwiftStore(container=swift_container, prefix="zarr_demo", storage_options=opts)
    root = zarr.group(store=store, overwrite=True)
    z = root.zeros(name="foo/bar", shape=(10, 10), chunks=(5, 5), dtype="i4")
    z[:] = 42
    assert store.keys() == [
        "foo/bar/c/0/0",
        "foo/bar/c/0/1",
        "foo/bar/c/1/0",
        "foo/bar/c/1/1",
        "foo/bar/zarr.json",
        "foo/zarr.json",
        "zarr.json",
    ]
    assert store.listdir() == ["foo", "zarr.json"] and store.listdir("foo") == ["bar", "zarr.json"]
    again = zarr.open_group(store=SwiftStore(swift_container, "zarr_demo", opts), mode="r")
    assert (again["foo/bar"][:] == 42).all()

    ds = dataset()
    xstore = SwiftStore(swift_container, "xarray_demo", opts)
    ds.to_zarr(store=xstore, mode="w", consolidated=True)
    xr.testing.assert_identical(xr.open_zarr(store=xstore, consolidated=True).load(), ds)
    # the same data by URL
    by_url = xr.open_zarr(xstore.fsspec_url, storage_options=opts)
    xr.testing.assert_identical(by_url.load(), ds)


async def test_zarr_swiftstore_readme(
    swift_server: SwiftServer, swift_container: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """zarr-swiftstore's README, in a notebook's running event loop, with only the import
    changed (``zarrswift`` -> ``zarrstores.swift``)."""
    from zarrstores.swift import acquire_token, getenv_auth, is_public, toggle_public

    for name in ("OS_STORAGE_URL", "OS_AUTH_TOKEN", "ST_AUTH", "ST_USER", "ST_KEY"):
        monkeypatch.setenv(name, "")  # recorded, so that what acquire_token sets is undone
        monkeypatch.delenv(name)
    acquire_token(swift_server.auth_url, "test:tester", "testing")  # sets OS_* for the session
    storage_options = getenv_auth()

    store = await SwiftStore.open(
        container=swift_container, prefix="zarr-demo", storage_options=storage_options
    )
    root = zarr.open_group(store=store, mode="w")
    z = root.zeros(name="foo/bar", shape=(10, 10), chunks=(5, 5), dtype="i4")
    z[:] = 42

    xstore = await SwiftStore.open(
        container=swift_container, prefix="xarray-demo", storage_options=storage_options
    )
    ds = xr.Dataset(
        {"foo": (("x", "y"), np.random.rand(4, 5))},
        coords={"x": [10, 20, 30, 40], "y": [1, 2, 3, 4, 5]},
    )
    ds.to_zarr(store=xstore, mode="w", consolidated=True)
    loaded = xr.open_zarr(store=xstore, consolidated=True)
    xr.testing.assert_identical(loaded.load(), ds)

    assert is_public(store) is False
    toggle_public(store)
    assert is_public(store) is True
    toggle_public(store)
    assert (zarr.open_group(store=store, mode="r")["foo/bar"][:] == 42).all()


def test_to_zarr_by_url_and_append(opts: dict[str, Any], swift_container: str) -> None:
    url = f"swift://{swift_container}/by-url.zarr"
    first, second = dataset(4), dataset(3, start="2024-01-05")
    first.to_zarr(url, mode="w", consolidated=True, storage_options=opts)
    second.to_zarr(url, append_dim="time", consolidated=True, storage_options=opts)
    back = xr.open_zarr(url, storage_options=opts).load()
    xr.testing.assert_identical(back, xr.concat([first, second], dim="time"))
    # and through the store, at the same place
    store = SwiftStore(swift_container, "by-url.zarr", opts)
    assert xr.open_zarr(store).sizes["time"] == 7


def test_region_writes(tempauth: dict[str, Any], swift_container: str) -> None:
    store = SwiftStore(swift_container, "region.zarr", tempauth)
    ds = dataset(6).chunk({"time": 2})
    ds.to_zarr(store, mode="w", compute=False)  # metadata and coordinates only
    for start in range(0, 6, 2):
        part = ds.isel(time=slice(start, start + 2))
        part.drop_vars(["lat", "lon"]).to_zarr(store, region={"time": slice(start, start + 2)})
    xr.testing.assert_identical(xr.open_zarr(store).load(), ds.load())


def test_dask_writes_and_reads(tempauth: dict[str, Any], swift_container: str) -> None:
    url = f"swift://{swift_container}/dask.zarr"
    ds = dataset(12).chunk({"time": 1, "lat": 3})
    with dask.config.set(scheduler="threads", num_workers=4):
        ds.to_zarr(url, mode="w", storage_options=tempauth)
        store = SwiftStore(swift_container, "dask.zarr", tempauth)
        ds.to_zarr(store, mode="w")
        for back in (xr.open_zarr(url, storage_options=tempauth), xr.open_zarr(store)):
            assert back.temp.chunks is not None
            xr.testing.assert_identical(back.compute(), ds.compute())
    assert len(store.listdir("temp/c")) == 12


def test_sharded_array_reads_partially(tempauth: dict[str, Any], swift_container: str) -> None:
    store = SwiftStore(swift_container, "sharded.zarr", tempauth)
    data = np.arange(64 * 64, dtype="f8").reshape(64, 64)
    arr = zarr.create_array(store, shape=data.shape, chunks=(8, 8), shards=(32, 32), dtype="f8")
    arr[:] = data
    assert [k for k in store if k.startswith("c/")] == [
        "c/0/0",
        "c/0/1",
        "c/1/0",
        "c/1/1",
    ]
    shard_size = len(store["c/0/0"])
    ranges: list[str] = []
    request = store.client.request

    async def spy(method: str, path: str = "", **kw: Any) -> Any:
        reply = await request(method, path, **kw)
        if method == "GET" and "/c/" in path:
            ranges.append((kw.get("headers") or {}).get("Range", "whole"))
            assert len(reply.body) < shard_size
        return reply

    store.client.request = spy  # type: ignore[method-assign]
    reader = zarr.open_array(store, mode="r")
    assert (reader[3:5, 40:42] == data[3:5, 40:42]).all()
    # the shard index (a suffix) and one inner chunk: never a whole shard
    assert ranges and "whole" not in ranges and any(r.startswith("bytes=-") for r in ranges)


def test_objects_under_prefix_in_swift_list(tempauth: dict[str, Any], swift_container: str) -> None:
    store = SwiftStore(swift_container, "deep/prefix", tempauth)
    zarr.group(store=store).create_array("a", shape=(4,), chunks=(2,), dtype="u1")[:] = 1
    swift = Path(sys.executable).with_name("swift")
    st_env = {"ST_AUTH": tempauth["auth"].authurl, "ST_USER": "test:tester", "ST_KEY": "testing"}
    out = subprocess.run(
        [str(swift), "list", swift_container],
        env={**os.environ, **st_env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == [f"deep/prefix/{key}" for key in store]
