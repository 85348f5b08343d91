"""Code written for swiftspec, zarr-swiftstore and s3fs runs on zarrstores unchanged: the
URL forms, ``store.url`` as an HTTP(S) address, s3fs's options on ``minio://``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import fsspec
import numpy as np
import pytest
import swiftclient
import xarray as xr

from zarrstores.auth import ConfigurationError
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
