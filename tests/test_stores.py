"""Both zarr stores against the same tests: zarr's own conformance suite (``StoreTests``) and
the mapping API zarr-swiftstore users call, so that the backends cannot drift apart."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import swiftclient
from backends import Backend, backend_fixture  # noqa: F401 (fixture)
from zarr.core.buffer import Buffer, cpu
from zarr.testing.store import StoreTests

from zarrstores._store import ObjectStore
from zarrstores.auth import STSCredentials, TempAuth
from zarrstores.devserver.oidc import OIDCIssuer
from zarrstores.devserver.rgw import RGWServer
from zarrstores.devserver.s3 import S3Server
from zarrstores.devserver.swift import SwiftServer
from zarrstores.minio import MinioStore
from zarrstores.swift import SwiftStore


class _Suite(StoreTests):
    """What both stores answer alike; ``set``/``get`` go around the store, with another
    client, so that the suite checks the store and not itself."""

    buffer_cls = cpu.Buffer

    def test_store_repr(self, store: ObjectStore) -> None:
        assert repr(store).startswith(f"{type(store).__name__}({store.fsspec_url!r}")

    def test_store_supports_writes(self, store: ObjectStore) -> None:
        assert store.supports_writes

    def test_store_supports_listing(self, store: ObjectStore) -> None:
        assert store.supports_listing


@pytest.fixture(scope="module", params=["swift", "rgw"])
def swift_like(request: pytest.FixtureRequest) -> SwiftServer | RGWServer:
    """OpenStack Swift, then Ceph RGW's Swift API."""
    return request.getfixturevalue("swift_server" if request.param == "swift" else "rgw_server")


@pytest.fixture(scope="module")
def swift_raw(swift_like: SwiftServer | RGWServer) -> Iterator[swiftclient.Connection]:
    """python-swiftclient, to write and read behind the store's back."""
    conn = swiftclient.Connection(swift_like.auth_url, "test:tester", "testing")
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def swift_suite(
    swift_like: SwiftServer | RGWServer, swift_raw: swiftclient.Connection
) -> dict[str, Any]:
    """A container and one tempauth login for the whole suite."""
    name = f"suite-{uuid.uuid4().hex[:12]}"
    swift_raw.put_container(name)
    return {"container": name, "auth": TempAuth(swift_like.auth_url, "test:tester", "testing")}


class TestSwiftStore(_Suite):
    store_cls = SwiftStore

    @pytest.fixture
    def store_kwargs(self, swift_suite: dict[str, Any], swift_raw: Any) -> dict[str, Any]:
        self._raw = swift_raw
        return {
            "container": swift_suite["container"],
            "prefix": f"suite/{uuid.uuid4().hex}",
            "storage_options": {"auth": swift_suite["auth"]},
        }

    async def set(self, store: SwiftStore, key: str, value: Buffer) -> None:
        await asyncio.to_thread(
            self._raw.put_object, store.container, store._path(key), value.to_bytes()
        )

    async def get(self, store: SwiftStore, key: str) -> Buffer:
        _, body = await asyncio.to_thread(self._raw.get_object, store.container, store._path(key))
        return self.buffer_cls.from_bytes(body)


@pytest.fixture(scope="module", params=["s3", "rgw"])
def s3_like(request: pytest.FixtureRequest) -> S3Server | RGWServer:
    """SeaweedFS, then Ceph RGW's S3 API (STS with a RoleArn)."""
    return request.getfixturevalue("s3_server" if request.param == "s3" else "rgw_server")


@pytest.fixture(scope="module")
def s3_suite(s3_like: S3Server | RGWServer, oidc_issuer: OIDCIssuer) -> Iterator[dict[str, Any]]:
    """A bucket and one set of STS credentials for the whole suite."""
    name = f"suite-{uuid.uuid4().hex[:12]}"
    admin = s3_like.admin_client()
    admin.create_bucket(Bucket=name)
    role = s3_like.readwrite_role_arn if isinstance(s3_like, RGWServer) else None
    credentials = STSCredentials(s3_like.endpoint, oidc_issuer.mint(), role_arn=role)
    yield {"bucket": name, "credentials": credentials}
    for page in admin.get_paginator("list_objects_v2").paginate(Bucket=name):
        for item in page.get("Contents", []):
            admin.delete_object(Bucket=name, Key=item["Key"])
    admin.delete_bucket(Bucket=name)


class TestMinioStore(_Suite):
    store_cls = MinioStore

    @pytest.fixture
    def store_kwargs(
        self, s3_like: S3Server | RGWServer, s3_suite: dict[str, Any]
    ) -> dict[str, Any]:
        self._admin = s3_like.admin_client()
        return {
            "bucket": s3_suite["bucket"],
            "prefix": f"suite/{uuid.uuid4().hex}",
            "endpoint_url": s3_like.endpoint,
            "credentials": s3_suite["credentials"],
        }

    async def set(self, store: MinioStore, key: str, value: Buffer) -> None:
        await asyncio.to_thread(
            self._admin.put_object, Bucket=store.bucket, Key=store._path(key), Body=value.to_bytes()
        )

    async def get(self, store: MinioStore, key: str) -> Buffer:
        reply = await asyncio.to_thread(
            self._admin.get_object, Bucket=store.bucket, Key=store._path(key)
        )
        return self.buffer_cls.from_bytes(reply["Body"].read())


# -- beyond zarr's suite: the same test for both backends ------------------------------------


def test_mapping_api(backend: Backend) -> None:
    """zarr-swiftstore's mapping surface; objects land exactly under ``<prefix>/<key>``."""
    store = backend.store("data/run1")
    store["zarr.json"] = b"{}"
    store["a/c/0"] = bytearray(b"\x01\x02")
    store["a/c/1"] = memoryview(b"\x03")
    assert store.fsspec_url == f"{store.protocol}://{backend.container}/data/run1"
    assert store.url.startswith(("http://", "https://"))
    assert store.url.endswith(f"/{backend.container}/data/run1")
    assert store["a/c/0"] == b"\x01\x02"
    assert "a/c/1" in store and "a/c/2" not in store
    assert store.keys() == ["a/c/0", "a/c/1", "zarr.json"]
    assert list(store) == store.keys() and len(store) == 3
    assert store.listdir() == ["a", "zarr.json"]
    assert store.listdir("a") == ["c"]
    assert store.listdir("a/c") == ["0", "1"]
    with pytest.raises(KeyError):
        store["missing"]
    del store["a/c/1"]
    with pytest.raises(KeyError):
        del store["a/c/1"]
    assert backend.raw_keys() == ["data/run1/a/c/0", "data/run1/zarr.json"]
    store.rmdir()
    assert store.keys() == [] and backend.raw_keys() == []


ODD_KEYS = [
    "with space/c 0",
    "hash#/q?uery=1&x",
    "per%cent/%20literal%",
    "plus+sign=c;d",
    "ünï/cödé/日本語/ключ",
    "tilde~and'quote\"",
    "semi;colon,comma:colon@at!bang$dollar(paren)*star",
]


def test_odd_keys_round_trip(backend: Backend) -> None:
    """Characters that URLs treat specially are stored under exactly the key given."""
    store = backend.store("odd")
    for key in ODD_KEYS:
        store[key] = key.encode()
    assert store.keys() == sorted(ODD_KEYS)
    assert all(store[key] == key.encode() for key in ODD_KEYS)
    assert backend.raw_keys() == sorted(f"odd/{key}" for key in ODD_KEYS)
    assert store.listdir("with space") == ["c 0"]
    store.rmdir()
    assert store.keys() == []
