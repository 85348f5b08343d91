"""User workflows against the real S3 server: the PAVICS xarray recipe by ``minio://`` URL and
by ``MinioStore``, public reads, dask workers, parquet through pyarrow and fsspec, and the
InfnMinio flow (token file -> ``from_token`` -> ``list_buckets``)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from backends import role_fixture, s3_api_server_fixture  # noqa: F401 (fixtures)

from zarrstores.devserver.rgw import RGWServer
from zarrstores.devserver.s3 import S3Server
from zarrstores.minio import MinioFileSystem, MinioStore, from_token, get_credentials, make_public

pytestmark = pytest.mark.filterwarnings("ignore:Consolidated metadata:UserWarning")


@pytest.fixture
def dataset() -> xr.Dataset:
    rng = np.random.default_rng(0)
    time = pd.date_range("2000-01-01", periods=24, freq="MS")
    return xr.Dataset(
        {"tas": (("time", "lat", "lon"), rng.normal(280, 5, (24, 10, 12)).astype("f4"))},
        coords={"time": time, "lat": np.linspace(40, 50, 10), "lon": np.linspace(-80, -69, 12)},
        attrs={"title": "PAVICS recipe"},
    )


@pytest.fixture
def bucket(server: S3Server | RGWServer, token_file: Path, role: dict[str, str]) -> str:
    """A new bucket made by the token's user, as InfnMinio users make theirs (on RGW, the
    buckets a session lists are those of its role's owner)."""
    name = f"test-{uuid.uuid4().hex[:16]}"
    fs = MinioFileSystem(
        endpoint_url=server.endpoint, token=str(token_file), skip_instance_cache=True, **role
    )
    fs.makedirs(name)
    return name


@pytest.fixture
def options(server: S3Server | RGWServer, token_file: Path, role: dict[str, str]) -> dict[str, Any]:
    return {"endpoint_url": server.endpoint, "token": str(token_file), **role}


def test_pavics_recipe_by_url(
    dataset: xr.Dataset, bucket: str, options: dict[str, Any], server: S3Server | RGWServer
) -> None:
    url = f"minio://{bucket}/pavics/tas.zarr"
    dataset.chunk({"time": 6}).to_zarr(url, storage_options=options, consolidated=True, mode="w")
    back = xr.open_zarr(url, storage_options=options, consolidated=True)
    xr.testing.assert_identical(back.load(), dataset)

    make_public(f"minio://{bucket}/pavics", options)
    public = {"endpoint_url": server.endpoint, "anon": True}
    xr.testing.assert_identical(
        xr.open_zarr(url, storage_options=public, consolidated=True).load(), dataset
    )


def test_pavics_recipe_by_store(
    dataset: xr.Dataset, bucket: str, server: S3Server | RGWServer, options: dict[str, Any]
) -> None:
    store = MinioStore(bucket, "pavics/tas.zarr", **options)
    dataset.to_zarr(store, consolidated=True, mode="w")
    xr.testing.assert_identical(xr.open_zarr(store, consolidated=True).load(), dataset)
    assert "tas" in store.listdir() and "zarr.json" in store

    make_public(store)
    anonymous = MinioStore(bucket, "pavics/tas.zarr", endpoint_url=server.endpoint, anon=True)
    xr.testing.assert_identical(xr.open_zarr(anonymous, consolidated=True).load(), dataset)
    with pytest.raises(PermissionError):
        dataset.to_zarr(anonymous, mode="w")


def test_parquet_through_pyarrow_and_fsspec_on_the_same_bucket(
    bucket: str, server: S3Server | RGWServer, token_file: Path, options: dict[str, Any]
) -> None:
    from pyarrow import fs as pafs

    frame = pd.DataFrame({"station": ["a", "b", "c"], "tas": [281.5, 279.0, 283.25]})
    creds = get_credentials(server.endpoint, token_file, role_arn=options.get("role_arn"))
    assert set(creds) == {"access_key", "secret_key", "session_token", "region"}
    arrow = pafs.S3FileSystem(endpoint_override=server.endpoint, **creds)
    frame.to_parquet(f"{bucket}/by-arrow.parquet", filesystem=arrow)

    pd.testing.assert_frame_equal(
        pd.read_parquet(f"minio://{bucket}/by-arrow.parquet", storage_options=options), frame
    )
    frame.to_parquet(f"minio://{bucket}/by-fsspec.parquet", storage_options=options)
    pd.testing.assert_frame_equal(
        pd.read_parquet(f"{bucket}/by-fsspec.parquet", filesystem=arrow), frame
    )


def test_infn_minio_flow_token_file_to_list_buckets(
    bucket: str, server: S3Server | RGWServer, token_file: Path, role: dict[str, str]
) -> None:
    import io

    client = from_token(token_file, endpoint=server.endpoint, **role)
    assert bucket in [b.name for b in client.list_buckets()]
    name = f"infn-{uuid.uuid4().hex[:8]}"
    client.put_object(bucket, name, io.BytesIO(b"from minio-py"), 13)
    assert client.get_object(bucket, name).read() == b"from minio-py"
