"""``MinioStore`` against the real S3 server: zarr's store conformance suite, the mapping API,
odd keys, pickling, event loops and error translation."""

from __future__ import annotations

import asyncio
import pickle
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from zarr.core.buffer import Buffer, cpu, default_buffer_prototype
from zarr.testing.store import StoreTests

from zarrstores.auth import STSCredentials
from zarrstores.devserver.s3 import S3Server
from zarrstores.minio import MinioStore


@pytest.fixture(scope="module")
def store_bucket(s3_server: S3Server) -> Iterator[str]:
    """One bucket for the module; every test works under a prefix of its own."""
    name = f"store-{uuid.uuid4().hex[:12]}"
    s3_server.admin_client().create_bucket(Bucket=name)
    yield name
    s3_server.admin_client().delete_bucket(Bucket=name)


@pytest.fixture(scope="module")
def provider(s3_server: S3Server, oidc_issuer: Any) -> STSCredentials:
    """STS credentials shared by the module's stores (one exchange for all of them)."""
    return STSCredentials(s3_server.endpoint, oidc_issuer.mint())


class TestMinioStore(StoreTests[MinioStore, cpu.Buffer]):
    store_cls = MinioStore
    buffer_cls = cpu.Buffer

    @pytest.fixture
    def store_kwargs(
        self, s3_server: S3Server, store_bucket: str, provider: STSCredentials
    ) -> dict[str, Any]:
        return {
            "bucket": store_bucket,
            "prefix": f"suite/{uuid.uuid4().hex}",
            "endpoint_url": s3_server.endpoint,
            "credentials": provider,
        }

    async def set(self, store: MinioStore, key: str, value: Buffer) -> None:
        client = self._server.admin_client()
        client.put_object(Bucket=store.bucket, Key=store._path(key), Body=value.to_bytes())

    async def get(self, store: MinioStore, key: str) -> Buffer:
        client = self._server.admin_client()
        body = client.get_object(Bucket=store.bucket, Key=store._path(key))["Body"].read()
        return self.buffer_cls.from_bytes(body)

    @pytest.fixture(autouse=True)
    def _remember_server(self, s3_server: S3Server) -> None:
        # set()/get() bypass the store and have no fixture arguments of their own.
        self._server = s3_server

    def test_store_repr(self, store: MinioStore) -> None:
        assert repr(store) == (
            f"MinioStore('minio://{store.bucket}/{store.prefix}', "
            f"endpoint_url={store.endpoint_url!r})"
        )

    def test_store_supports_writes(self, store: MinioStore) -> None:
        assert store.supports_writes

    def test_store_supports_listing(self, store: MinioStore) -> None:
        assert store.supports_listing


# -- beyond the suite ----------------------------------------------------------------------


@pytest.fixture
def store(s3_server: S3Server, store_bucket: str, provider: STSCredentials) -> MinioStore:
    return MinioStore(
        store_bucket,
        f"extra/{uuid.uuid4().hex}",
        endpoint_url=s3_server.endpoint,
        credentials=provider,
    )


# Not here: "." / ".." segments (SeaweedFS answers 400) and "//" (it stores "/").
ODD_KEYS = [
    "with space/a b",
    "plus+sign and space",
    "hash#tag",
    "question?mark=1&x",
    "percent%20literal%",
    "plus+sign",
    "unicodé/日本語/ключ",
    "tilde~and'quote\"",
    "semi;colon,comma:colon@at!bang$dollar(paren)*star",
]


def test_odd_keys_round_trip(store: MinioStore, s3_server: S3Server) -> None:
    for key in ODD_KEYS:
        store[key] = key.encode()
    assert store.keys() == sorted(ODD_KEYS)
    for key in ODD_KEYS:
        assert store[key] == key.encode()
    admin = s3_server.admin_client()
    listed = admin.list_objects_v2(Bucket=store.bucket, Prefix=store.prefix + "/")["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted(f"{store.prefix}/{k}" for k in ODD_KEYS)
    assert store.listdir("with space") == ["a b"]
    store.rmdir()
    assert store.keys() == []


def test_mapping_api(store: MinioStore) -> None:
    store["a/zarr.json"] = b"{}"
    store["a/c/0"] = bytearray(b"\x00\x01")
    store["b"] = memoryview(b"x")
    assert store.url == f"minio://{store.bucket}/{store.prefix}"
    assert store.keys() == ["a/c/0", "a/zarr.json", "b"]
    assert list(store) == store.keys() and len(store) == 3
    assert store.listdir() == ["a", "b"]
    assert store.listdir("a") == ["c", "zarr.json"]
    assert "a/c/0" in store and "a/c/1" not in store
    assert store["a/c/0"] == b"\x00\x01"
    del store["b"]
    with pytest.raises(KeyError):
        store["b"]
    with pytest.raises(KeyError):
        del store["b"]
    store.rmdir("a")
    assert store.keys() == []


def test_pickled_store_keeps_credentials_and_drops_connections(store: MinioStore) -> None:
    store["k"] = b"v"  # opens a connection on zarr's loop
    assert store._drivers
    clone = pickle.loads(pickle.dumps(store))
    assert clone == store and not clone._drivers
    assert clone.credentials.get() == store.credentials.get()  # cached keys travel along
    assert clone["k"] == b"v"
    assert clone.credentials.exchanges == store.credentials.exchanges  # no new STS call


def test_one_session_per_event_loop(store: MinioStore) -> None:
    store["k"] = b"v"  # on zarr's own loop
    seen: list[tuple[bytes, object]] = []

    def in_own_loop() -> None:
        async def read() -> None:
            buf = await store.get("k", default_buffer_prototype())
            assert buf is not None
            seen.append((buf.to_bytes(), store._drivers[asyncio.get_running_loop()]))

        asyncio.run(read())

    threads = [threading.Thread(target=in_own_loop) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [data for data, _ in seen] == [b"v"] * 3
    assert len({id(driver) for _, driver in seen}) == 3  # one driver (and session) per loop
    assert store["k"] == b"v"


def test_missing_bucket_is_file_not_found_not_missing_key(
    s3_server: S3Server, provider: STSCredentials
) -> None:
    store = MinioStore("no-such-bucket-here", endpoint_url=s3_server.endpoint, credentials=provider)
    with pytest.raises(FileNotFoundError, match="bucket 'no-such-bucket-here' does not exist"):
        store["zarr.json"]
    with pytest.raises(FileNotFoundError, match="no-such-bucket-here"):
        store.keys()


def test_anonymous_read_of_private_data_is_permission_error(
    store: MinioStore, s3_server: S3Server
) -> None:
    store["k"] = b"v"
    anon = MinioStore(store.bucket, store.prefix, endpoint_url=s3_server.endpoint, anon=True)
    with pytest.raises(PermissionError, match="Anonymous access is not allowed here"):
        anon["k"]
    assert not anon.read_only  # anonymous, not read-only: a write is refused by the server
    with pytest.raises(PermissionError):
        anon["x"] = b"y"


def test_options_from_environment_and_token_path(
    s3_server: S3Server, store_bucket: str, token_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.endpoint)
    monkeypatch.setenv("BEARER_TOKEN_FILE", str(token_file))
    store = MinioStore(store_bucket, f"env/{uuid.uuid4().hex}")
    assert store.endpoint_url == s3_server.endpoint
    assert isinstance(store.credentials, STSCredentials)
    store["k"] = b"v"
    by_path = MinioStore(store_bucket, store.prefix, token=token_file, read_only=True)
    assert by_path["k"] == b"v"
    with pytest.raises(ValueError, match="read-only"):
        by_path["x"] = b"y"
