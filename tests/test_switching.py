"""Code written for swiftspec, zarr-swiftstore and s3fs runs on zarrstores unchanged: the
URL forms, ``store.url`` as an HTTP(S) address, s3fs's options on ``minio://``."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fsspec
import numpy as np
import pytest
import requests
import s3fs
import swiftclient
import xarray as xr
import zarr

from zarrstores import (
    SwiftStore,
    acquire_token,
    get_credentials,
    getenv_auth,
    is_public,
    make_public,
    toggle_public,
)
from zarrstores.auth import ConfigurationError
from zarrstores.devserver.s3 import S3Server
from zarrstores.devserver.swift import SwiftServer
from zarrstores.swift import SwiftFileSystem

USER, KEY = "test:tester", "testing"


@pytest.fixture
def container(swift_server: SwiftServer) -> Iterator[str]:
    name = f"switch-{uuid.uuid4().hex[:10]}"
    conn = swiftclient.Connection(swift_server.auth_url, USER, KEY)
    conn.put_container(name)
    yield name
    for entry in conn.get_container(name, full_listing=True)[1]:
        conn.delete_object(name, entry["name"])
    conn.delete_container(name)
    conn.close()


@pytest.fixture
def preauth(swift_server: SwiftServer) -> dict[str, Any]:
    storage_url, token = swift_server.get_token()
    return {"preauthurl": storage_url, "preauthtoken": token}


def swiftspec_url(storage_url: str, path: str) -> str:
    """``swift://<host>/<account>/<path>``, as DKRZ's documentation writes them."""
    url = urlsplit(storage_url)
    return f"swift://{url.netloc}/{url.path.rstrip('/').rpartition('/')[2]}/{path}"


def dataset() -> xr.Dataset:
    return xr.Dataset({"tas": (("t", "x"), np.arange(24.0).reshape(4, 6))})


def test_swiftspec_url_form_reads_and_writes_the_same_objects(container, preauth) -> None:
    long_form = swiftspec_url(preauth["preauthurl"], f"{container}/tas.zarr")
    assert long_form.startswith("swift://127.0.0.1:")
    dataset().to_zarr(long_form, storage_options=preauth, mode="w", consolidated=False)
    short = xr.open_zarr(
        f"swift://{container}/tas.zarr", storage_options=preauth, consolidated=False
    )
    xr.testing.assert_identical(short.load(), dataset())
    dataset().chunk({"t": 2}).to_zarr(f"swift://{container}/b.zarr", storage_options=preauth)
    back = xr.open_zarr(
        swiftspec_url(preauth["preauthurl"], f"{container}/b.zarr"), storage_options=preauth
    )
    xr.testing.assert_identical(back.load(), dataset())
    with fsspec.open(long_form + "/note.txt", "wb", **preauth) as f:
        f.write(b"hello")
    fs, path = fsspec.core.url_to_fs(long_form, **preauth)
    assert isinstance(fs, SwiftFileSystem) and path == f"{container}/tas.zarr"
    assert fs.cat(f"{container}/tas.zarr/note.txt") == b"hello"
    assert "note.txt" in {p.rpartition("/")[2] for p in fs.ls(long_form, detail=False)}


def test_swiftspec_url_naming_another_account_is_refused(container, preauth) -> None:
    other = swiftspec_url(preauth["preauthurl"], f"{container}/x.zarr").replace(
        "/AUTH_test/", "/AUTH_other/"
    )
    with pytest.raises(ConfigurationError) as e:
        xr.open_zarr(other, storage_options=preauth)
    first = str(e.value).splitlines()[0]
    assert len(first) < 200
    assert "account AUTH_other" in first and "credentials are for AUTH_test" in first
    host = swiftspec_url(preauth["preauthurl"], f"{container}/x.zarr").replace(
        "swift://127.0.0.1:", "swift://swift.example.org:"
    )
    with pytest.raises(ConfigurationError, match=r"at swift\.example\.org"):
        fsspec.open(host, "rb", **preauth).open()


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("climate/tas.zarr", "climate/tas.zarr"),
        ("swift.dkrz.de/dkrz_0a1b2c/climate/tas.zarr", "climate/tas.zarr"),
        ("127.0.0.1:8080/AUTH_test/c", "c"),
        ("climate.v2/tas.zarr/x", "climate.v2/tas.zarr/x"),  # a dotted container, no account
        ("swift.dkrz.de/dkrz_0a1b2c", "swift.dkrz.de/dkrz_0a1b2c"),  # no container: not the form
    ],
)
def test_strip_protocol_drops_host_and_account(path: str, expected: str) -> None:
    assert SwiftFileSystem._strip_protocol(f"swift://{path}") == expected


# -- s3fs users: the same code with minio:// as with s3:// ----------------------------------


def s3fs_style_session(protocol: str, options: dict[str, Any], bucket: str) -> xr.Dataset:
    """What an s3fs notebook does: a filesystem from options, a mapper, xarray on it."""
    fs = fsspec.filesystem(protocol, **options)
    mapper = fs.get_mapper(f"{bucket}/{protocol}.zarr")
    dataset().to_zarr(mapper, mode="w", consolidated=True)
    assert isinstance(s3fs.S3Map(f"{bucket}/{protocol}.zarr", s3=fs)["zarr.json"], bytes)
    url = f"{protocol}://{bucket}/{protocol}.zarr"
    return xr.open_zarr(url, storage_options=options).load()


@pytest.mark.parametrize("protocol", ["s3", "minio"])
def test_s3fs_options_work_on_minio_as_on_s3(
    protocol: str, s3_server: S3Server, token_file: Path, bucket: str
) -> None:
    endpoint = {"endpoint_url": s3_server.endpoint}
    static = {"key": s3_server.admin_access_key, "secret": s3_server.admin_secret_key}
    for options in (
        {**static, "client_kwargs": endpoint},
        {**static, **endpoint},
        {**static, "client_kwargs": {**endpoint, "region_name": "us-east-1"}, "use_ssl": False},
    ):
        back = s3fs_style_session(protocol, {**options, "skip_instance_cache": True}, bucket)
        xr.testing.assert_identical(back, dataset())
    # temporary keys with their session token, which s3fs calls `token`
    keys = get_credentials(s3_server.endpoint, token_file)
    session = {
        "key": keys["access_key"],
        "secret": keys["secret_key"],
        "token": keys["session_token"],
        "client_kwargs": endpoint,
        "skip_instance_cache": True,
    }
    xr.testing.assert_identical(s3fs_style_session(protocol, session, bucket), dataset())


@pytest.mark.parametrize("protocol", ["s3", "minio"])
def test_anonymous_reading_as_in_s3fs(
    protocol: str, s3_server: S3Server, token_file: Path, bucket: str
) -> None:
    owner = {"endpoint_url": s3_server.endpoint, "token": str(token_file)}
    dataset().to_zarr(f"minio://{bucket}/open.zarr", storage_options=owner, consolidated=True)
    make_public(f"minio://{bucket}/open.zarr", storage_options=owner)
    anonymous = {"anon": True, "client_kwargs": {"endpoint_url": s3_server.endpoint}}
    fs = fsspec.filesystem(protocol, skip_instance_cache=True, **anonymous)
    back = xr.open_zarr(fs.get_mapper(f"{bucket}/open.zarr")).load()
    xr.testing.assert_identical(back, dataset())


# -- zarr-swiftstore's notebook, cell by cell -------------------------------------------------


def test_zarr_swiftstore_notebook_flow(
    swift_server: SwiftServer, container: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = swift_server.st_env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("OS_STORAGE_URL", "OS_AUTH_TOKEN"):  # acquire_token sets them: undo after
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    auth = getenv_auth()
    assert {"authurl", "user", "key"} <= set(auth)
    # seed: a zarr group and array through the store
    store = SwiftStore(container=container, prefix="zarr-demo", storage_options=auth)
    root = zarr.open_group(store=store, mode="w")
    bar = root.zeros(name="foo/bar", shape=(10, 10), chunks=(5, 5), dtype="i4")
    bar[:] = 42
    assert store.listdir() == ["foo", "zarr.json"]
    assert store.listdir("foo/bar") == ["c", "zarr.json"]
    keys = store.keys()
    assert keys == sorted(
        ["zarr.json", "foo/zarr.json", "foo/bar/zarr.json"]
        + [f"foo/bar/c/{i}/{j}" for i in (0, 1) for j in (0, 1)]
    )
    listed = subprocess.run(
        [str(Path(sys.executable).parent / "swift"), "list", container],
        env={**env, "PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == [f"zarr-demo/{k}" for k in keys]
    # xarray through a second store, then the token flow
    xr_store = SwiftStore(container=container, prefix="xarray-demo", storage_options=auth)
    dataset().to_zarr(xr_store, mode="w", consolidated=True)
    preauth = acquire_token(env["ST_AUTH"], env["ST_USER"], env["ST_KEY"])
    assert os.environ["OS_AUTH_TOKEN"] == preauth["preauthtoken"]
    assert xr_store.url == f"{preauth['preauthurl']}/{container}/xarray-demo"
    http = fsspec.filesystem("http", headers={"X-Auth-Token": preauth["preauthtoken"]})
    private = xr.open_zarr(http.get_mapper(xr_store.url)).load()
    xr.testing.assert_identical(private, dataset())
    assert requests.get(f"{xr_store.url}/zarr.json", timeout=30).status_code == 401
    # public, read over HTTP without credentials, then private again
    assert not is_public(xr_store)
    assert toggle_public(xr_store) is True and is_public(xr_store)
    assert requests.get(f"{xr_store.url}/zarr.json", timeout=30).status_code == 200
    public = xr.open_zarr(fsspec.get_mapper(xr_store.url)).load()
    xr.testing.assert_identical(public, dataset())
    assert toggle_public(xr_store) is False and not is_public(xr_store)
