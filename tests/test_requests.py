"""How many requests reads cost, counted at the fault proxy in front of each server: sharded
reads stay at <= 2 requests per inner chunk and per run of adjacent inner chunks of one shard
(the shard index and the data), through the stores and through ``swift://`` / ``minio://``
URLs; opening a consolidated dataset stays within today's round trips."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pytest
import xarray as xr
import zarr
from backends import Backend, swift_and_s3_fixture  # noqa: F401 (fixture)

from zarrstores.auth import STSCredentials

CHUNK = 16  # elements of an inner chunk
INNER = 16  # inner chunks per shard
SHARDS = 4

# (selection, runs of adjacent inner chunks it touches; each run lies in one shard)
SELECTIONS = [
    (slice(0, CHUNK), 1),  # one inner chunk
    (slice(5 * CHUNK + 3, 6 * CHUNK - 2), 1),  # part of one inner chunk
    (slice(4 * CHUNK, 8 * CHUNK), 1),  # 4 adjacent inner chunks
    (slice(0, INNER * CHUNK), 1),  # every inner chunk of a shard
    (slice(INNER * CHUNK - CHUNK, INNER * CHUNK + CHUNK), 2),  # across a shard boundary
    (slice(0, SHARDS * INNER * CHUNK), SHARDS),  # the whole array
]


def url_options(backend: Backend) -> dict[str, Any]:
    """``storage_options`` for the backend's URL, through its fault proxy."""
    if backend.name == "swift":
        return {"auth": backend.auth(faulty=True)}  # type: ignore[attr-defined]
    endpoint = backend.proxy.url
    token = backend.issuer.mint()  # type: ignore[attr-defined]
    return {"endpoint_url": endpoint, "credentials": STSCredentials(endpoint, token)}


def storage_requests(backend: Backend, since: int) -> list[tuple[str, str]]:
    """(method, path) of the requests seen after ``since``, but those fetching credentials."""
    auth = backend.auth_request
    return [
        (m, p)
        for m, p, _ in backend.proxy.seen[since:]
        if not (m == auth["method"] and auth["path_contains"] in p)
    ]


def url_of(backend: Backend, name: str) -> str:
    return f"{'swift' if backend.name == 'swift' else 'minio'}://{backend.container}/{name}"


@pytest.mark.parametrize("way", ["store", "url"])
def test_sharded_reads_cost_two_requests_per_run(backend: Backend, way: str) -> None:
    name = f"sharded-{uuid.uuid4().hex[:8]}"
    values = np.arange(SHARDS * INNER * CHUNK, dtype="int32")
    zarr.create_array(
        backend.store(name),
        shape=values.shape,
        chunks=(CHUNK,),
        shards=(INNER * CHUNK,),
        dtype=values.dtype,
        compressors=None,
    )[:] = values
    if way == "store":
        array = zarr.open_array(backend.store(name, faulty=True), mode="r")
    else:
        options = url_options(backend)
        array = zarr.open_array(url_of(backend, name), mode="r", storage_options=options)
    for selection, runs in SELECTIONS:
        since = len(backend.proxy.seen)
        np.testing.assert_array_equal(array[selection], values[selection])
        requests = storage_requests(backend, since)
        assert 1 <= len(requests) <= 2 * runs, (selection, requests)
        assert all(method == "GET" and "/c/" in path for method, path in requests), requests


def dataset(variables: int) -> xr.Dataset:
    return xr.Dataset(
        {f"v{i}": (("time", "x"), np.full((4, 8), i, "float32")) for i in range(variables)},
        coords={"time": np.arange(4), "x": np.arange(8)},
    )


# Requests of ``xr.open_zarr(..., consolidated=True)`` as measured with zarr 3.4 (metadata,
# then the two index coordinates' data): an upper bound, so that opening never costs more
# unnoticed. With ``zarr_format=3`` only ``zarr.json`` is read; without, zarr also looks for
# v2's ``.zmetadata``, ``.zgroup`` and ``.zattrs`` (in parallel: one more round trip).
OPEN_REQUESTS = {3: 3, None: 6}


@pytest.mark.parametrize("zarr_format", [3, None])
@pytest.mark.parametrize("way", ["store", "url"])
def test_open_consolidated_round_trips(backend: Backend, way: str, zarr_format: int | None) -> None:
    name = f"dataset-{uuid.uuid4().hex[:8]}"
    local = dataset(20)
    local.to_zarr(backend.store(name), mode="w", consolidated=True, zarr_format=3)
    if way == "store":
        target: Any = backend.store(name, faulty=True, read_only=True)
        options: dict[str, Any] = {}
    else:
        target = url_of(backend, name)
        options = {"storage_options": url_options(backend)}
    since = len(backend.proxy.seen)
    opened = xr.open_zarr(target, consolidated=True, zarr_format=zarr_format, **options)
    requests = storage_requests(backend, since)
    assert 1 <= len(requests) <= OPEN_REQUESTS[zarr_format], requests
    assert sorted(opened.data_vars) == sorted(local.data_vars)


@pytest.mark.parametrize("way", ["store", "url"])
def test_max_concurrency_bounds_requests_in_flight(backend: Backend, way: str) -> None:
    name = f"limited-{uuid.uuid4().hex[:8]}"
    values = np.arange(24 * CHUNK, dtype="int32")
    zarr.create_array(backend.store(name), shape=values.shape, chunks=(CHUNK,), dtype="int32")[
        :
    ] = values
    # Every chunk read waits at the proxy, so that zarr's 24 reads overlap if let through.
    backend.proxy.inject("delay", count=0, delay=0.2, method="GET", path_contains="/c/")
    peaks = {}
    with zarr.config.set({"async.concurrency": 24}):
        for limit in (3, 24):
            if way == "store":
                store = backend.store(name, faulty=True, max_concurrency=limit)
                array = zarr.open_array(store, mode="r")
            else:
                options = {**url_options(backend), "max_concurrency": limit}
                array = zarr.open_array(url_of(backend, name), mode="r", storage_options=options)
            backend.proxy.peak_live = 0
            np.testing.assert_array_equal(array[:], values)
            peaks[limit] = backend.proxy.peak_live
    assert peaks[3] <= 3, peaks
    assert peaks[24] > 3, peaks  # without the limit the reads do overlap: the count sees it


@pytest.mark.parametrize("way", ["store", "url"])
def test_large_object_from_memory_is_one_put(backend: Backend, way: str) -> None:
    # 12 MiB: above the 5 MiB at which obstore would otherwise upload in parts (3 + 2 requests).
    import fsspec
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    name = f"big-{uuid.uuid4().hex[:8]}"
    blob = np.random.default_rng(5).bytes(12 << 20)
    since = len(backend.proxy.seen)
    if way == "store":
        store = backend.store(name, faulty=True)
        sync(store.set("shard", default_buffer_prototype().buffer.from_bytes(blob)))
        got = sync(store.get("shard", default_buffer_prototype())).to_bytes()
    else:
        fs, path = fsspec.url_to_fs(url_of(backend, name) + "/shard", **url_options(backend))
        fs.pipe_file(path, blob)
        got = fs.cat_file(path)
    requests = storage_requests(backend, since)
    assert [m for m, _ in requests].count("PUT") == 1, requests
    assert not any(m == "POST" for m, _ in requests), requests  # no multipart upload
    assert got == blob


def test_shards_written_at_once_ask_the_cluster_limits_once(backend: Backend) -> None:
    # Swift checks objects above 1 MiB against /info's max_file_size: zarr writing 3 shards at
    # once shares one /info request (S3 asks nothing).
    name = f"shards-{uuid.uuid4().hex[:8]}"
    values = np.arange(3 * (1 << 19), dtype="float32")  # 3 shards of 2 MiB
    store = backend.store(name, faulty=True)
    array = zarr.create_array(
        store,
        shape=values.shape,
        chunks=(1 << 16,),
        shards=(1 << 19,),
        dtype="float32",
        compressors=None,
    )
    since = len(backend.proxy.seen)
    array[:] = values
    requests = storage_requests(backend, since)
    assert sum(1 for _, p in requests if p.endswith("/info")) <= 1, requests
    assert sum(1 for m, p in requests if m == "PUT" and "/c/" in p) == 3, requests
    np.testing.assert_array_equal(zarr.open_array(store, mode="r")[:], values)
