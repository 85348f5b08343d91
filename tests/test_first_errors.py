"""The first errors a user switching to zarrstores meets: each names the problem and the fix
in a first line under 200 characters, and never echoes a long name whole."""

from __future__ import annotations

from pathlib import Path

import fsspec
import numpy as np
import pytest
import xarray as xr

from zarrstores import MinioStore, SwiftStore, get_credentials
from zarrstores.auth import ConfigurationError, TokenError, TokenNotFoundError
from zarrstores.devserver.s3 import S3Server
from zarrstores.devserver.swift import SwiftServer


def first_line(error: pytest.ExceptionInfo[BaseException]) -> str:
    line = str(error.value).splitlines()[0]
    assert len(line) < 200, line
    return line


@pytest.fixture
def servers_env(
    monkeypatch: pytest.MonkeyPatch,
    swift_server: SwiftServer,
    s3_server: S3Server,
    token_file: Path,
) -> None:
    for name, value in swift_server.st_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    monkeypatch.setenv("BEARER_TOKEN_FILE", str(token_file))


def test_token_path_that_does_not_exist(s3_server: S3Server, tmp_path: Path) -> None:
    missing = str(tmp_path / "nonexistent" / ".token")  # InfnMinio passes a string
    with pytest.raises(TokenNotFoundError) as e:
        get_credentials(s3_server.endpoint, missing)
    assert f"token file {missing} does not exist" in first_line(e)
    with pytest.raises(TokenNotFoundError, match="does not exist"):
        get_credentials(s3_server.endpoint, "/nonexistent/.token")


def test_token_path_that_is_a_directory(s3_server: S3Server, tmp_path: Path) -> None:
    with pytest.raises(TokenError) as e:
        get_credentials(s3_server.endpoint, str(tmp_path))
    line = first_line(e)
    assert "is a directory: name the token file in it" in line and "JWT" not in line


@pytest.mark.parametrize(("url", "what"), [("swift://", "container"), ("minio://", "bucket")])
def test_url_without_container_or_bucket(servers_env: None, url: str, what: str) -> None:
    with pytest.raises(ConfigurationError) as e:
        xr.open_zarr(url)
    assert first_line(e).startswith(f"no {what} in the URL '{url}': write {url}<{what}>/<path>")


def test_invalid_bucket_name_on_read_and_write(servers_env: None) -> None:
    expected = "'My_Bucket' is not an S3 bucket name: use 3-63 lowercase letters"
    with pytest.raises(ConfigurationError) as e:
        xr.open_zarr("minio://My_Bucket/tas.zarr")
    assert first_line(e).startswith(expected)
    with pytest.raises(ConfigurationError) as e:
        xr.open_zarr(MinioStore("My_Bucket", "tas.zarr"))
    assert first_line(e).startswith(expected)
    ds = xr.Dataset({"a": ("x", np.arange(3.0))})
    with pytest.raises(ConfigurationError) as e:
        ds.to_zarr("minio://My_Bucket/tas.zarr", mode="w")
    assert first_line(e).startswith(expected)


def test_bucket_name_that_botocore_refuses_before_sending(servers_env: None) -> None:
    # A space or "!" fails botocore's own check, before any request (s3fs let it through as
    # botocore's "Parameter validation failed:").
    fs = fsspec.filesystem("minio", skip_instance_cache=True)
    ds = xr.Dataset({"a": ("x", np.arange(3.0))})
    for action in (
        lambda: fs.ls("my data!"),
        lambda: fs.info("my data!/x"),
        lambda: fs.exists("my data!/x"),
        lambda: fs.find("my data!"),
        lambda: fs.mkdir("my data!"),
        lambda: ds.to_zarr("minio://my data!/tas.zarr", mode="w"),
    ):
        with pytest.raises(ConfigurationError) as e:
            action()
        assert first_line(e).startswith("'my data!' is not an S3 bucket name: use 3-63 lowercase")


def test_long_names_are_not_echoed_whole(servers_env: None) -> None:
    long = "c" * 512
    for action in (
        lambda: xr.open_zarr(f"swift://{long}/tas.zarr"),
        lambda: xr.Dataset().to_zarr(f"swift://{long}/tas.zarr", mode="w"),
        lambda: SwiftStore(long, "tas.zarr"),
    ):
        with pytest.raises(ConfigurationError) as e:
            action()
        line = first_line(e)
        assert "has 512 bytes; Swift allows at most 256" in line and long not in line
    with pytest.raises(ConfigurationError) as e:
        xr.open_zarr(f"minio://{'b' * 512}/tas.zarr")
    assert "(512 characters)' is not an S3 bucket name" in first_line(e)
