"""``SwiftStore`` against the real Swift: zarr's store conformance suite, the mapping API
zarr-swiftstore users call, odd keys, pickling, event loops and container creation."""

from __future__ import annotations

import asyncio
import pickle
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import swiftclient
from zarr.core.buffer import cpu, default_buffer_prototype

from zarrstores.auth import KeystoneAuth, TempAuth
from zarrstores.devserver.swift import SwiftServer
from zarrstores.swift import SwiftStore


@pytest.fixture(scope="module")
def auth(swift_server: SwiftServer) -> TempAuth:
    """One tempauth login shared by the module's stores."""
    return TempAuth(swift_server.auth_url, "test:tester", "testing")


@pytest.fixture(scope="module")
def raw(swift_server: SwiftServer) -> Iterator[swiftclient.Connection]:
    """python-swiftclient, to write and read behind the store's back."""
    conn = swiftclient.Connection(swift_server.auth_url, "test:tester", "testing")
    yield conn
    conn.close()


@pytest.fixture
def store(swift_server: SwiftServer, auth: TempAuth, swift_container: str) -> SwiftStore:
    return SwiftStore(swift_container, "data/run1", {"auth": auth})


def test_url_and_public_url(store: SwiftStore, swift_server: SwiftServer) -> None:
    assert store.fsspec_url == f"swift://{store.container}/data/run1"
    assert store.url == f"{swift_server.storage_url()}/{store.container}/data/run1"
    assert store.public_url == store.url


def test_container_created_by_first_write_only(
    swift_server: SwiftServer, auth: TempAuth, swift_container: str, raw: swiftclient.Connection
) -> None:
    reader = SwiftStore(swift_container, storage_options={"auth": auth}, read_only=True)
    assert reader.get_sync("zarr.json") is None
    assert reader.keys() == [] and reader.listdir() == []
    with pytest.raises(swiftclient.ClientException):
        raw.head_container(swift_container)  # reading never creates it
    writer = reader.with_read_only(False)
    assert writer.client.auth is auth  # no second login
    writer["zarr.json"] = b"{}"
    assert raw.head_container(swift_container)["x-container-object-count"] == "1"
    assert reader["zarr.json"] == b"{}"


def test_pickle_and_other_threads(store: SwiftStore) -> None:
    store["k"] = b"v"
    clone = pickle.loads(pickle.dumps(store))
    assert clone == store and clone is not store
    results: list[bytes] = []

    def worker() -> None:
        # a thread with its own event loop, as dask workers have
        async def read() -> bytes:
            buf = await clone.get("k", default_buffer_prototype())
            await clone.aclose()
            assert buf is not None
            return buf.to_bytes()

        results.append(asyncio.run(read()))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [b"v"] * 3
    assert clone["k"] == b"v"


def test_equality(swift_server: SwiftServer, auth: TempAuth) -> None:
    opts = {"authurl": swift_server.auth_url, "user": "test:tester", "key": "testing"}
    assert SwiftStore("c", "p", opts) == SwiftStore("c", "p/", dict(opts))
    assert SwiftStore("c", "p", opts) != SwiftStore("c", "q", opts)
    assert SwiftStore("c", "p", opts) != SwiftStore("c", "p", opts, read_only=True)
    other = {**opts, "user": "test2:tester2", "key": "testing2"}
    assert SwiftStore("c", "p", opts) != SwiftStore("c", "p", other)


def test_bad_container_name() -> None:
    with pytest.raises(ValueError, match="container"):
        SwiftStore("a/b", storage_options={"anon": True, "storage_url": "http://x/v1/AUTH_a"})


async def test_delete_dir_uses_bulk_delete(store: SwiftStore) -> None:
    await store._set_many((f"arr/c/{i}", cpu.Buffer.from_bytes(b"x")) for i in range(40))
    await store.set("keep/zarr.json", cpu.Buffer.from_bytes(b"{}"))
    calls: list[tuple[str, str]] = []
    request = store.client.request

    async def spy(method: str, path: str = "", **kw: Any) -> Any:
        calls.append((method, kw.get("query", "")))
        return await request(method, path, **kw)

    store.client.request = spy  # type: ignore[method-assign]
    await store.delete_dir("arr")
    assert [k async for k in store.list()] == ["keep/zarr.json"]
    assert ("POST", "?bulk-delete") in calls
    assert not any(m == "DELETE" for m, _ in calls)
    await store.aclose()


def test_keystone_store(swift_server: SwiftServer, swift_container: str) -> None:
    env = swift_server.os_env("password")
    opts = {
        "authurl": env["OS_AUTH_URL"],
        "user": env["OS_USERNAME"],
        "key": env["OS_PASSWORD"],
        "os_options": {
            "project_name": env["OS_PROJECT_NAME"],
            "user_domain_name": "Default",
            "project_domain_name": "Default",
            "region_name": env["OS_REGION_NAME"],
        },
    }
    store = SwiftStore(swift_container, "ks", opts)
    store["a"] = b"keystone"
    assert store.keys() == ["a"]
    assert store.public_url.startswith(swift_server.keystone_proxy_url)
    app = swift_server.os_env("application_credential")
    credential = KeystoneAuth(
        app["OS_AUTH_URL"],
        auth_type="v3applicationcredential",
        application_credential_id=app["OS_APPLICATION_CREDENTIAL_ID"],
        application_credential_secret=app["OS_APPLICATION_CREDENTIAL_SECRET"],
    )
    reader = SwiftStore(swift_container, "ks", {"auth": credential}, read_only=True)
    assert reader["a"] == b"keystone"
