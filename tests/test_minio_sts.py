"""Credentials from an OIDC token via STS, against the real server: writes across several
session expiries, the read-only role, and bad tokens."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from fixtures_s3 import S3_SHORT_SESSION

from zarrstores.auth import (
    S3CredentialProvider,
    S3Credentials,
    STSCredentials,
    STSError,
    TokenError,
    TokenExpiredError,
)
from zarrstores.devserver.oidc import OIDCIssuer
from zarrstores.devserver.s3 import S3Server
from zarrstores.minio import MinioFileSystem, MinioStore

ROWS, COLS = 4096, 64  # chunks of one row: 4,096 objects of 512 bytes


class UnannouncedExpiry(STSCredentials):
    """STS credentials whose expiry the client is not told (clock skew, a server that ends
    sessions early): only the server's rejection shows they expired."""

    def _exchange(self) -> S3Credentials:
        return dataclasses.replace(super()._exchange(), expires_at=None)


@pytest.fixture
def short_bucket(s3_short: S3Server) -> Iterator[str]:
    name = f"sts-{uuid.uuid4().hex[:12]}"
    s3_short.admin_client().create_bucket(Bucket=name)
    yield name
    s3_short.admin_client().delete_bucket(Bucket=name)


def expected(row: int) -> np.ndarray:
    return np.arange(row * COLS, (row + 1) * COLS, dtype="f8")


def write_rows_until(array: zarr.Array, enough: Callable[[], bool], rows_per_step: int = 8) -> int:
    """Write rows block by block, several blocks a second, until ``enough()``; returns rows."""
    row = 0
    while row < ROWS and not enough():
        block = np.stack([expected(r) for r in range(row, row + rows_per_step)])
        array[row : row + rows_per_step] = block
        row += rows_per_step
        time.sleep(0.15)
    return row


def test_writes_run_across_session_expiries_without_a_failed_request(
    s3_short: S3Server, oidc_issuer: OIDCIssuer, short_bucket: str, tmp_path: Path
) -> None:
    """Three writers at once, each over >= 3 expiries of 8 s sessions: the store renewing
    before expiry, the store and the ``minio://`` filesystem learning of it from the server."""
    token_file = tmp_path / "token"
    # Rewritten (truncate, pause, write) every 2 s, as sts-wire keeps a token fresh.
    with oidc_issuer.refresh_token_file(token_file, every=2.0):
        ahead = STSCredentials(s3_short.endpoint, token_file=token_file, duration=900)
        told_by_store = UnannouncedExpiry(s3_short.endpoint, token_file=token_file)
        told_by_fs = UnannouncedExpiry(s3_short.endpoint, token_file=token_file)
        stores: dict[str, Any] = {
            "ahead": MinioStore(
                short_bucket, "ahead", endpoint_url=s3_short.endpoint, credentials=ahead
            ),
            "store": MinioStore(
                short_bucket, "store", endpoint_url=s3_short.endpoint, credentials=told_by_store
            ),
            "fs": zarr.storage.FsspecStore(
                MinioFileSystem(
                    endpoint_url=s3_short.endpoint,
                    credentials=told_by_fs,
                    asynchronous=True,
                    skip_instance_cache=True,
                ),
                path=f"{short_bucket}/fs",
            ),
        }
        providers = {"ahead": ahead, "store": told_by_store, "fs": told_by_fs}
        errors: list[BaseException] = []
        written: dict[str, int] = {}
        started = time.monotonic()

        def writer(name: str) -> None:
            try:
                array = zarr.create_array(
                    stores[name],
                    name="x",
                    shape=(ROWS, COLS),
                    chunks=(1, COLS),
                    dtype="f8",
                    fill_value=-1.0,
                )
                written[name] = write_rows_until(array, lambda: providers[name].exchanges >= 4)
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=writer, args=(name,)) for name in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        exchanges = {name: provider.exchanges for name, provider in providers.items()}
    assert not errors, errors
    for name, store in stores.items():
        rows = written[name]
        assert exchanges[name] >= 4, (name, rows)  # >= 3 expiries lived through
        back = zarr.open_array(store, path="x", mode="r")[:rows]
        assert np.array_equal(back, np.stack([expected(r) for r in range(rows)])), name
    # One exchange per credential lifetime, however many requests and writers. Lifetimes are
    # a little shorter than the session (the server truncates expiry times to the second);
    # "ahead" renews at 75 % of one.
    lifetime = S3_SHORT_SESSION - 1
    assert exchanges["ahead"] <= elapsed / (0.75 * lifetime) + 1
    assert exchanges["store"] <= elapsed / lifetime + 1
    assert exchanges["fs"] <= elapsed / lifetime + 1


class Rotating(S3CredentialProvider):
    """Keys a test changes, as another store's refresh or a rotation changes a provider's."""

    def __init__(self, creds: S3Credentials) -> None:
        self.creds = creds

    def get(self) -> S3Credentials:
        return self.creds


def test_a_store_signs_with_the_keys_its_provider_holds_now(
    s3_server: S3Server, oidc_issuer: OIDCIssuer, data_bucket: str
) -> None:
    """Read-only keys sign the first requests, read-write ones are given next: the write goes
    through. A store still signing with the keys it was first given was refused the write (and,
    with session keys, a rejection of keys no longer current cost one more STS exchange)."""

    def session(**claims: Any) -> S3Credentials:
        creds = STSCredentials(s3_server.endpoint, token=oidc_issuer.mint(**claims)).get()
        return dataclasses.replace(creds, expires_at=None)  # nothing to tell them apart by time

    provider = Rotating(session(policy=s3_server.readonly_policy))
    store = MinioStore(data_bucket, endpoint_url=s3_server.endpoint, credentials=provider)
    assert zarr.open_array(store, path="data/x", mode="r")[:].tolist() == list(np.arange(10.0))
    with pytest.raises(PermissionError, match="read-only"):
        zarr.create_array(store, name="rotated", data=np.arange(3.0))
    provider.creds = session()
    zarr.create_array(store, name="rotated", data=np.arange(3.0), overwrite=True)
    assert zarr.open_array(store, path="rotated", mode="r")[:].tolist() == [0.0, 1.0, 2.0]


@pytest.fixture(scope="module")
def data_bucket(s3_server: S3Server, oidc_issuer: OIDCIssuer) -> Iterator[str]:
    """A bucket with a small array ``data/x``, written with a read-write token."""
    name = f"sts-{uuid.uuid4().hex[:12]}"
    s3_server.admin_client().create_bucket(Bucket=name)
    store = MinioStore(name, "data", endpoint_url=s3_server.endpoint, token=oidc_issuer.mint())
    zarr.create_array(store, name="x", data=np.arange(10.0), chunks=(5,))
    yield name
    s3_server.admin_client().delete_bucket(Bucket=name)


def test_read_only_role_reads_and_is_refused_writes_saying_so(
    s3_server: S3Server, oidc_issuer: OIDCIssuer, data_bucket: str
) -> None:
    token = oidc_issuer.mint(policy=s3_server.readonly_policy)
    store = MinioStore(data_bucket, "data", endpoint_url=s3_server.endpoint, token=token)
    array = zarr.open_array(store, path="x", mode="r+")
    assert array[:].tolist() == list(np.arange(10.0))
    with pytest.raises(
        PermissionError, match=r"(?s)PUT minio://.*denied \(AccessDenied.*read-only"
    ):
        array[:5] = 7
    fs = MinioFileSystem(endpoint_url=s3_server.endpoint, token=token, skip_instance_cache=True)
    assert fs.cat(f"{data_bucket}/data/x/zarr.json")
    with pytest.raises(
        PermissionError, match=rf"(put_object|PUT) minio://{data_bucket}/new.*read-only"
    ):
        fs.pipe(f"{data_bucket}/new", b"x")
    assert token not in str(store.credentials.describe())


BAD_TOKENS: dict[str, tuple[Callable[[OIDCIssuer], str], type[Exception], str]] = {
    "expired": (lambda i: i.mint(expires_in=-60), TokenExpiredError, r"expired at .* s ago"),
    "garbage": (lambda i: "not-a-jwt", TokenError, "not a JWT"),
    "bad-signature": (
        lambda i: i.mint(bad_signature=True),
        STSError,
        "AssumeRoleWithWebIdentity .* failed: InvalidParameterValue",
    ),
}


@pytest.mark.parametrize("case", BAD_TOKENS)
def test_bad_token_gives_the_auth_error_not_fill_values(
    s3_server: S3Server, oidc_issuer: OIDCIssuer, data_bucket: str, case: str
) -> None:
    make, error, message = BAD_TOKENS[case]
    token = make(oidc_issuer)
    store = MinioStore(data_bucket, "data", endpoint_url=s3_server.endpoint, token=token)
    with pytest.raises(error, match=message) as info:
        zarr.open_array(store, path="x", mode="r")[:]
    assert token not in str(info.value)
    fs = MinioFileSystem(endpoint_url=s3_server.endpoint, token=token, skip_instance_cache=True)
    with pytest.raises(error, match=message):
        fs.cat(f"{data_bucket}/data/x/c/0")
