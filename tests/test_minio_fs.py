"""The ``minio://`` fsspec filesystem against the real S3 server: registration, endpoint and
credential sources, S3-compatible defaults, multipart, paging, errors, pickling."""

from __future__ import annotations

import os
import pickle
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest
from backends import (  # noqa: F401 (fixtures)
    fault_proxy,
    new_bucket,
    role_fixture,
    s3_api_server_fixture,
)
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

from zarrstores.auth import AnonymousS3, StaticS3Credentials, STSCredentials
from zarrstores.devserver.rgw import RGWServer
from zarrstores.devserver.s3 import S3Server
from zarrstores.minio import MinioFileSystem, MinioStore


@pytest.fixture
def bucket(server: S3Server | RGWServer) -> Iterator[str]:
    """A new empty bucket on ``server`` (made with the admin keys); emptied and removed."""
    with new_bucket(server) as name:
        yield name


@pytest.fixture
def options(server: S3Server | RGWServer, token_file: Path, role: dict[str, str]) -> dict[str, Any]:
    return {"endpoint_url": server.endpoint, "token": str(token_file), **role}


def test_minio_urls_open_through_fsspec(bucket: str, options: dict[str, Any]) -> None:
    url = f"minio://{bucket}/dir/hello.txt"
    with fsspec.open(url, "wb", **options) as f:
        f.write(b"hello")
    with fsspec.open(url, "rb", **options) as f:
        assert f.read() == b"hello"
    fs, path = fsspec.core.url_to_fs(url, **options)
    assert isinstance(fs, MinioFileSystem) and path == f"{bucket}/dir/hello.txt"
    assert isinstance(fs.credentials, STSCredentials)
    assert fs.ls(f"minio://{bucket}/dir", detail=False) == [f"{bucket}/dir/hello.txt"]
    assert fs.unstrip_protocol(path) == url


def test_defaults_for_s3_compatible_servers(
    server: S3Server | RGWServer, options: dict[str, Any]
) -> None:
    fs = MinioFileSystem(**options, skip_instance_cache=True)
    config = fs.s3.meta.config
    assert config.s3["addressing_style"] == "path"
    assert config.signature_version == "s3v4"
    assert config.request_checksum_calculation == "when_required"
    assert fs.s3.meta.region_name == "us-east-1"
    assert fs.s3.meta.endpoint_url == server.endpoint
    assert config.connect_timeout and config.read_timeout  # every request has timeouts


def test_presigned_url_with_session_token(bucket: str, options: dict[str, Any]) -> None:
    fs = MinioFileSystem(**options, skip_instance_cache=True)
    fs.pipe(f"{bucket}/signed.txt", b"signed")
    url = fs.sign(f"{bucket}/signed.txt", expiration=300)
    assert "X-Amz-Security-Token=" in url and "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"signed"


def test_endpoint_and_keys_from_environment_or_mc_alias(
    server: S3Server | RGWServer, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = (server.admin_access_key, server.admin_secret_key)
    monkeypatch.delenv("BEARER_TOKEN_FILE", raising=False)
    monkeypatch.delenv("BEARER_TOKEN", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    fs = MinioFileSystem(key=admin[0], secret=admin[1], skip_instance_cache=True)
    assert isinstance(fs.credentials, StaticS3Credentials)
    fs.pipe(f"{bucket}/static", b"1")

    host = server.endpoint.removeprefix("http://")
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv("MC_HOST_local", f"http://{admin[0]}:{admin[1]}@{host}")
    fs = MinioFileSystem(mc_alias="local", skip_instance_cache=True)
    assert fs.endpoint_url == server.endpoint
    assert fs.cat(f"{bucket}/static") == b"1"
    store = MinioStore(bucket, mc_alias="local")
    assert store["static"] == b"1"


def test_multipart_upload_and_paged_listing(bucket: str, options: dict[str, Any]) -> None:
    fs = MinioFileSystem(**options, skip_instance_cache=True)
    part = 5 * 2**20  # S3's smallest part
    data = bytes(range(256)) * (2 * part // 256 + 1000)
    with fs.open(f"{bucket}/big.bin", "wb", block_size=part) as f:
        f.write(data)
    assert fs.size(f"{bucket}/big.bin") == len(data)
    assert (
        fs.cat_file(f"{bucket}/big.bin", start=part - 2, end=part + 2) == data[part - 2 : part + 2]
    )
    # More keys than one listing page (1,000) holds, written concurrently by the store.
    store = MinioStore(bucket, "many", **options)
    empty = default_buffer_prototype().buffer.from_bytes(b"")
    sync(store._set_many((f"k{i:04d}", empty) for i in range(1005)))
    assert len(fs.ls(f"{bucket}/many", detail=False)) == 1005
    assert len(store.keys()) == 1005
    store.rmdir()  # bulk delete, 1,000 keys per request
    assert store.keys() == []


def test_keys_obstore_cannot_send_are_stored_as_s3fs_stores_them(
    bucket: str, options: dict[str, Any], tmp_path: Path
) -> None:
    """A folder marker ("dir/") and a name with a control character: through obstore the
    first was stored as "dir" (the slash dropped) and the second refused; s3fs sends both."""
    fs = MinioFileSystem(**options, skip_instance_cache=True)
    fs.pipe_file(f"{bucket}/marker/", b"")
    fs.pipe_file(f"{bucket}/tab\tname", b"tab")
    listed = fs.call_s3("list_objects_v2", Bucket=bucket, Prefix="")
    keys = {c["Key"] for c in listed.get("Contents", [])}
    assert {"marker/", "tab\tname"} <= keys and "marker" not in keys
    assert fs.cat_file(f"{bucket}/tab\tname") == b"tab" and fs.cat_file(f"{bucket}/marker/") == b""
    fs.get_file(f"{bucket}/tab\tname", str(tmp_path / "got"))
    assert (tmp_path / "got").read_bytes() == b"tab"
    with pytest.raises(ValueError, match=r"control character \('\\t'\).*remove it"):
        MinioStore(bucket, "", **options)["tab\tname"] = b"x"  # zarr keys: refused at once


def test_errors_name_bucket_and_operation_and_no_secret(
    server: S3Server | RGWServer, bucket: str, options: dict[str, Any]
) -> None:
    fs = MinioFileSystem(**options, skip_instance_cache=True)
    with pytest.raises(FileNotFoundError, match="bucket 'no-such-bucket' does not exist"):
        fs.cat("no-such-bucket/x")
    with pytest.raises(FileNotFoundError):
        fs.cat(f"{bucket}/missing")
    where = rf"minio://{bucket}/missing\.nc at {server.endpoint} does not exist"
    for call in (fs.info, fs.open, fs.size, fs.ukey):
        with pytest.raises(FileNotFoundError, match=where):
            call(f"{bucket}/missing.nc")
    with pytest.raises(FileNotFoundError, match="bucket 'no-such-bucket' does not exist"):
        fs.info("no-such-bucket/x")
    anon = MinioFileSystem(endpoint_url=server.endpoint, anon=True, skip_instance_cache=True)
    assert isinstance(anon.credentials, AnonymousS3)
    fs.pipe(f"{bucket}/private", b"x")
    with pytest.raises(
        PermissionError,
        match=rf"(head_object|get_object|GET) minio://{bucket}/private .*AccessDenied.*not public",
    ):
        anon.cat(f"{bucket}/private")
    wrong = MinioFileSystem(
        endpoint_url=server.endpoint,
        key=server.admin_access_key,
        secret="wrong-secret",
        skip_instance_cache=True,
    )
    with pytest.raises(PermissionError) as info:
        wrong.cat(f"{bucket}/private")
    # Ceph RGW with STS on answers AccessDenied to a wrong secret: the message says so.
    refused = "Or they are wrong" if isinstance(server, RGWServer) else "SignatureDoesNotMatch"
    assert "wrong-secret" not in str(info.value) and refused in str(info.value)
    creds = fs.credentials.get()
    assert creds.secret_key.reveal() not in str(info.value)


def test_filesystem_pickles_with_its_credentials(bucket: str, options: dict[str, Any]) -> None:
    fs = fsspec.filesystem("minio", **options)
    fs.pipe(f"{bucket}/p", b"pickled")
    clone = pickle.loads(pickle.dumps(fs))
    assert clone.cat(f"{bucket}/p") == b"pickled"
    assert clone.endpoint_url == fs.endpoint_url


def test_odd_keys_round_trip(bucket: str, options: dict[str, Any]) -> None:
    fs = MinioFileSystem(**options, skip_instance_cache=True)
    keys = ["with space/a b", "hash#tag", "q?x=1&y", "pct%20%", "plus+", "unicodé/日本語"]
    fs.pipe({f"{bucket}/odd/{k}": k.encode() for k in keys})
    for key in keys:
        assert fs.cat(f"{bucket}/odd/{key}") == key.encode()
    assert sorted(fs.find(f"{bucket}/odd")) == sorted(f"{bucket}/odd/{k}" for k in keys)


def test_chunk_reads_and_writes_are_one_request_each(
    server: S3Server | RGWServer, bucket: str, token_file: Path, role: dict[str, str]
) -> None:
    """s3fs asks for the size (a HEAD) before each whole read; minio:// sends one GET per read
    and one PUT per write (through the lean client), ranges as fsspec counts them."""
    proxy = fault_proxy(server.endpoint)
    fs = MinioFileSystem(
        endpoint_url=proxy.url, token=str(token_file), skip_instance_cache=True, **role
    )
    big = os.urandom(3 * 2**20 + 5)
    fs.pipe_file(f"{bucket}/warm-up", b"")  # the STS exchange goes through the proxy too

    def requests(call: Callable[[], object]) -> list[str]:
        before = len(proxy.seen)
        call()
        return [method for method, *_ in proxy.seen[before:]]

    assert requests(lambda: fs.pipe_file(f"{bucket}/small", b"chunk")) == ["PUT"]
    assert requests(lambda: fs.pipe_file(f"{bucket}/big", big)) == ["PUT"]
    assert requests(lambda: fs.pipe_file(f"{bucket}/empty", b"")) == ["PUT"]
    shard = b"\x01" * (100 << 20)  # s3fs would upload this in 50 MiB parts
    assert requests(lambda: fs.pipe_file(f"{bucket}/shard", shard)) == ["PUT"]
    assert fs.size(f"{bucket}/shard") == len(shard)
    parts = lambda: fs.pipe_file(f"{bucket}/parts", shard[: 11 << 20], chunksize=5 << 20)  # noqa: E731
    assert requests(parts) == ["POST", "PUT", "PUT", "PUT", "POST"]  # asked for: s3fs's parts
    assert fs.size(f"{bucket}/parts") == 11 << 20
    got: dict[str, bytes] = {}
    for name in ("small", "big", "empty"):
        read = lambda n=name: got.setdefault(n, fs.cat_file(f"{bucket}/{n}"))  # noqa: E731
        assert requests(read) == ["GET"]
    assert got == {"small": b"chunk", "big": big, "empty": b""}
    path = f"{bucket}/big"
    assert fs.cat_file(path, start=5, end=10) == big[5:10]
    assert fs.cat_file(path, start=-7) == big[-7:]
    assert fs.cat_file(path, start=-7, end=-2) == big[-7:-2]
    assert fs.cat_file(path, start=10, end=-3) == big[10:-3]
    assert fs.cat_file(path, start=len(big) + 5) == b""
    assert fs.cat_ranges([path, path], [0, 100], [3, 103]) == [big[:3], big[100:103]]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fs.cat_file(f"{bucket}/missing")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fs.cat_file(f"{bucket}/missing", start=-3, end=-1)
    versioned = MinioFileSystem(
        endpoint_url=proxy.url,
        token=str(token_file),
        version_aware=True,
        skip_instance_cache=True,
        **role,
    )
    assert versioned.cat_file(f"{bucket}/small") == b"chunk"  # s3fs's own way


def test_large_reads_hand_zarr_the_downloaded_buffer(bucket: str, options: dict[str, Any]) -> None:
    """An asynchronous instance (zarr's FsspecStore makes those) returns reads from 4 MiB on
    as a view of obstore's buffer, not a copy; synchronous calls and small reads get bytes."""
    fs = MinioFileSystem(**options, skip_instance_cache=True)
    big = os.urandom(5 << 20)
    fs.pipe({f"{bucket}/big": big, f"{bucket}/small": b"chunk"})
    afs = MinioFileSystem(**options, skip_instance_cache=True, asynchronous=True)
    whole = sync(afs._cat_file(f"{bucket}/big"))
    tail = sync(afs._cat_file(f"{bucket}/big", start=-(4 << 20)))
    assert isinstance(whole, memoryview) and whole.readonly and whole == big
    assert isinstance(tail, memoryview) and tail == big[-(4 << 20) :]
    assert sync(afs._cat_file(f"{bucket}/big", start=0, end=10)) == big[:10]
    assert type(sync(afs._cat_file(f"{bucket}/big", start=0, end=10))) is bytes
    assert type(sync(afs._cat_file(f"{bucket}/small"))) is bytes
    got = fs.cat_file(f"{bucket}/big")
    assert type(got) is bytes and got == big


def test_different_credential_objects_never_share_a_cached_instance(
    server: S3Server | RGWServer, bucket: str
) -> None:
    """fsspec caches instances by their printed options; credentials print without secrets."""
    admin = server.admin_access_key
    wrong = StaticS3Credentials(admin, "wrong-secret")
    right = StaticS3Credentials(admin, server.admin_secret_key)
    assert repr(wrong) == repr(right)
    first = fsspec.filesystem("minio", endpoint_url=server.endpoint, credentials=wrong)
    second = fsspec.filesystem("minio", endpoint_url=server.endpoint, credentials=right)
    assert first is not second and second.credentials is right
    second.pipe(f"{bucket}/cached", b"with the right secret")
    with pytest.raises(PermissionError, match=r"SignatureDoesNotMatch|Or they are wrong"):
        first.cat(f"{bucket}/cached")
    again = fsspec.filesystem("minio", endpoint_url=server.endpoint, credentials=right)
    assert again is second  # the same object still shares its instance
