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
from zarr.core.buffer import default_buffer_prototype

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


# -- beyond the suite ----------------------------------------------------------------------


@pytest.fixture
def store(s3_server: S3Server, store_bucket: str, provider: STSCredentials) -> MinioStore:
    return MinioStore(
        store_bucket,
        f"extra/{uuid.uuid4().hex}",
        endpoint_url=s3_server.endpoint,
        credentials=provider,
    )


def test_pickled_store_keeps_credentials_and_drops_connections(store: MinioStore) -> None:
    store["k"] = b"v"  # opens a connection on zarr's loop
    assert store._drivers
    clone = pickle.loads(pickle.dumps(store))
    assert clone == store and not clone._drivers
    assert clone.credentials.get() == store.credentials.get()  # cached keys travel along
    assert clone["k"] == b"v"
    assert clone.credentials.exchanges == store.credentials.exchanges  # no new STS call


def test_stores_opened_with_the_same_token_share_one_sts_exchange(
    s3_server: S3Server, store_bucket: str, oidc_issuer: Any, tmp_path: Path
) -> None:
    """A notebook opening dataset after dataset: one exchange for all, by token and by file."""
    token, token_file = oidc_issuer.mint(), tmp_path / "token"
    token_file.write_text(oidc_issuer.mint())
    token_file.chmod(0o600)

    def open_(prefix: str, **how: Any) -> MinioStore:
        store = MinioStore(store_bucket, prefix, endpoint_url=s3_server.endpoint, **how)
        store[f"{prefix}-k"] = prefix.encode()
        return store

    for how in ({"token": token}, {"token_file": token_file}):
        first, second = open_("a", **how), open_("b", **how)
        assert second.credentials is first.credentials and first.credentials.exchanges == 1
    other = open_("c", token=oidc_issuer.mint())  # another token: its own exchange
    assert other.credentials is not first.credentials and other.credentials.exchanges == 1
    assert first["a-k"] == b"a" and other["c-k"] == b"c"


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


def test_reads_cancelled_while_waiting_for_a_slot_free_it(
    s3_server: S3Server, store_bucket: str, provider: STSCredentials
) -> None:
    """``max_concurrency=2`` and 40 reads, half of them cancelled while they wait or are in
    flight: every slot comes back, so the other reads and the next ones all complete (a slot
    lost to a cancellation would leave them waiting for ever)."""
    store = MinioStore(
        store_bucket, f"slots/{uuid.uuid4().hex}", endpoint_url=s3_server.endpoint,
        credentials=provider, max_concurrency=2,
    )  # fmt: skip
    store["k"] = b"value"
    prototype = default_buffer_prototype()

    async def rounds() -> list[Any]:
        tasks = [asyncio.create_task(store.get("k", prototype)) for _ in range(40)]
        await asyncio.sleep(0)  # two in flight, the others waiting
        for task in tasks[::2]:
            task.cancel()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        again = await asyncio.gather(*(store.get("k", prototype) for _ in range(10)))
        return [*done, *again]

    results = asyncio.run(asyncio.wait_for(rounds(), 120))  # guards against a hang only
    cancelled = [r for r in results if isinstance(r, asyncio.CancelledError)]
    read = [r.to_bytes() for r in results if not isinstance(r, BaseException)]
    assert len(cancelled) == 20 and read == [b"value"] * 30
    limit = store._client._limits
    assert [slots.free for slots in limit.values()] == [2] * len(limit)
