"""Public read access through the container ACL, seen by plain HTTP and ``swift://`` with
``anon=True``, and refused cleanly to users without rights."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import requests
import swiftclient
import xarray as xr
import zarr

from zarrstores.auth import TempAuth
from zarrstores.devserver.rgw import RGWServer
from zarrstores.devserver.swift import SwiftServer
from zarrstores.swift import (
    SwiftFileSystem,
    SwiftStore,
    is_public,
    make_private,
    make_public,
    toggle_public,
)


@pytest.fixture(scope="module", params=["swift", "rgw"])
def server(request: pytest.FixtureRequest) -> SwiftServer | RGWServer:
    """OpenStack Swift, then Ceph RGW's Swift API (both with container ACLs)."""
    return request.getfixturevalue("swift_server" if request.param == "swift" else "rgw_server")


@pytest.fixture(scope="module")
def opts(server: SwiftServer | RGWServer) -> dict[str, Any]:
    return {"auth": TempAuth(server.auth_url, "test:tester", "testing")}


@pytest.fixture
def store(opts: dict[str, Any], swift_container: str) -> SwiftStore:
    store = SwiftStore(swift_container, "pub.zarr", opts)
    ds = xr.Dataset({"t": (("x",), np.arange(6.0))})
    ds.to_zarr(store, mode="w", consolidated=True)
    return store


def anon_fs(server: SwiftServer | RGWServer) -> SwiftFileSystem:
    return SwiftFileSystem(anon=True, storage_url=server.storage_url(), skip_instance_cache=True)


def read_acl(server: SwiftServer | RGWServer, container: str) -> str:
    url, token = server.get_token()
    return swiftclient.head_container(url, token, container).get("x-container-read", "")


def test_make_public_then_private(store: SwiftStore, server: SwiftServer | RGWServer) -> None:
    c = store.container
    url, token = server.get_token()
    # an ACL entry of someone else must survive both changes
    swiftclient.post_container(url, token, c, {"X-Container-Read": "test2:tester2"})
    assert not is_public(store)
    assert requests.get(f"{store.public_url}/zarr.json").status_code == 401

    make_public(store)
    assert is_public(store)
    # (Ceph RGW keeps the entries in an order of its own)
    assert sorted(read_acl(server, c).split(",")) == [".r:*", ".rlistings", "test2:tester2"]
    # plain anonymous HTTP lists and reads
    listing = requests.get(f"{server.storage_url()}/{c}", params={"format": "json"})
    assert listing.status_code == 200 and "pub.zarr/zarr.json" in listing.text
    assert requests.get(f"{store.public_url}/zarr.json").status_code == 200
    # and so does swift:// with anon=True, for xarray too
    fs = anon_fs(server)
    assert f"{c}/pub.zarr/zarr.json" in fs.find(f"{c}/pub.zarr")
    opened = xr.open_zarr(
        f"swift://{c}/pub.zarr",
        storage_options={"anon": True, "storage_url": server.storage_url()},
    )
    assert opened.t.values.tolist() == [0, 1, 2, 3, 4, 5]

    make_private(store)
    assert not is_public(store)
    assert read_acl(server, c) == "test2:tester2"
    assert requests.get(f"{store.public_url}/zarr.json").status_code == 401
    fs = anon_fs(server)
    with pytest.raises(PermissionError, match="not public") as e:
        fs.cat_file(f"{c}/pub.zarr/zarr.json")
    assert "make_public" in str(e.value)
    with pytest.raises(PermissionError, match="not public"):
        fs.ls(c)


def test_toggle_by_name_and_url(
    store: SwiftStore, server: SwiftServer | RGWServer, opts: dict[str, Any]
) -> None:
    c = store.container
    assert toggle_public(c, opts) is True
    assert is_public(f"swift://{c}/pub.zarr", opts)
    assert toggle_public(f"{server.storage_url()}/{c}/pub.zarr", opts) is False
    assert not is_public(c, opts)
    assert read_acl(server, c) == ""


def test_large_objects_stay_readable(
    server: SwiftServer | RGWServer, opts: dict[str, Any], swift_container: str
) -> None:
    fs = SwiftFileSystem(**opts, segment_size=64 * 1024, skip_instance_cache=True)
    data = np.random.default_rng(0).bytes(200 * 1024)
    fs.pipe_file(f"{swift_container}/big", data)
    make_public(swift_container, opts)
    assert ".r:*" in read_acl(server, f"{swift_container}_segments")
    assert anon_fs(server).cat_file(f"{swift_container}/big") == data
    make_private(swift_container, opts)
    assert read_acl(server, f"{swift_container}_segments") == ""


@pytest.mark.parametrize("user", ["test:tester3", "test2:tester2"])
def test_no_rights_is_a_clear_permission_error(
    store: SwiftStore, server: SwiftServer | RGWServer, user: str
) -> None:
    # tester3 is in the account but not an admin; tester2 is admin of another account
    other = {
        "authurl": server.auth_url,
        "user": user,
        "key": server.users[user],
        "storage_url": server.storage_url("test"),
    }
    changes = [make_public, make_private, toggle_public]
    if isinstance(server, RGWServer) and user == "test:tester3":
        # Ceph RGW: a subuser with read access sees the ACL, so making the private container
        # private changes nothing and is no error; sharing it is refused.
        make_private(store.container, other)
        changes.remove(make_private)
    for change in changes:
        with pytest.raises(PermissionError, match=r"no rights to .* ACL of container") as e:
            change(store.container, other)
        assert user in str(e.value) and store.container in str(e.value)
    assert not is_public(store)


def test_missing_container(opts: dict[str, Any], swift_container: str) -> None:
    with pytest.raises(FileNotFoundError, match=swift_container):
        make_public(swift_container, opts)
    with pytest.raises(ValueError, match="container name"):
        is_public("a/b", opts)


def test_public_store_reads_with_zarr(store: SwiftStore, server: SwiftServer | RGWServer) -> None:
    make_public(store)
    reader = SwiftStore(
        store.container,
        store.prefix,
        {"anon": True, "storage_url": server.storage_url()},
        read_only=True,
    )
    assert zarr.open_group(reader, mode="r")["t"][:].tolist() == [0, 1, 2, 3, 4, 5]
    assert "t/zarr.json" in reader and reader.listdir() == ["t", "zarr.json"]
