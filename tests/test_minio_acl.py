"""Sharing a bucket or a prefix through the bucket policy, checked with anonymous requests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from backends import new_bucket, s3_api_server_fixture, sts_role  # noqa: F401 (fixture)

from zarrstores.auth import ConfigurationError
from zarrstores.devserver.rgw import RGWServer
from zarrstores.devserver.s3 import S3Server
from zarrstores.minio import MinioStore, is_public, make_private, make_public, toggle_public


def anonymous_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.fixture
def bucket(server: S3Server | RGWServer) -> Iterator[str]:
    """A new empty bucket on ``server`` (made with the admin keys); emptied and removed."""
    with new_bucket(server) as name:
        yield name


@pytest.fixture
def store(server: S3Server | RGWServer, bucket: str, token_file: Path) -> MinioStore:
    """A store on ``bucket`` with data under ``shared/`` and ``private/``."""
    store = MinioStore(bucket, endpoint_url=server.endpoint, token=token_file, **sts_role(server))
    for key in ("shared/a.zarr/zarr.json", "shared/b.txt", "private/c.txt", "top.txt"):
        store[key] = b"{}"
    return store


def at(store: MinioStore, prefix: str) -> MinioStore:
    """The same bucket and credentials, at ``prefix``."""
    return MinioStore(
        store.bucket, prefix, endpoint_url=store.endpoint_url, credentials=store.credentials
    )


def test_make_a_prefix_public_and_private_again(
    store: MinioStore, server: S3Server | RGWServer
) -> None:
    url = f"{server.endpoint}/{store.bucket}"
    shared = at(store, "shared")
    assert not is_public(shared)
    make_public(shared)
    make_public(shared)  # idempotent: no duplicate statements
    assert is_public(shared) and is_public(at(store, "shared/a.zarr"))
    assert not is_public(at(store, "private")) and not is_public(store)
    assert anonymous_status(f"{url}/shared/a.zarr/zarr.json") == 200
    assert anonymous_status(f"{url}/private/c.txt") == 403
    policy = json.loads(server.admin_client().get_bucket_policy(Bucket=store.bucket)["Policy"])
    assert len(policy["Statement"]) == 2

    anon = MinioStore(store.bucket, "shared", endpoint_url=server.endpoint, anon=True)
    assert anon.keys() == ["a.zarr/zarr.json", "b.txt"]  # anonymous listing of the prefix
    assert anon["b.txt"] == b"{}"
    with pytest.raises(PermissionError, match="not public"):
        MinioStore(store.bucket, endpoint_url=server.endpoint, anon=True).keys()

    make_private(shared)
    assert not is_public(shared)
    assert anonymous_status(f"{url}/shared/b.txt") == 403
    with pytest.raises(PermissionError):
        anon["b.txt"]


def test_toggle_by_url_keeps_other_statements(
    store: MinioStore, server: S3Server | RGWServer, token_file: Path
) -> None:
    admin = server.admin_client()
    other = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": ["s3:GetObject"],
        "Resource": [f"arn:aws:s3:::{store.bucket}/top.txt"],
    }
    admin.put_bucket_policy(
        Bucket=store.bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [other]})
    )
    options = {"endpoint_url": server.endpoint, "token": token_file, **sts_role(server)}
    url = f"minio://{store.bucket}/private"
    assert toggle_public(url, options) is True
    assert is_public(url, options)
    assert anonymous_status(f"{server.endpoint}/{store.bucket}/private/c.txt") == 200
    assert toggle_public(url, options) is False
    assert anonymous_status(f"{server.endpoint}/{store.bucket}/private/c.txt") == 403
    statements = json.loads(admin.get_bucket_policy(Bucket=store.bucket)["Policy"])["Statement"]
    assert len(statements) == 1  # the user's own statement is still there
    assert anonymous_status(f"{server.endpoint}/{store.bucket}/top.txt") == 200


def test_whole_bucket_public_then_a_prefix_cannot_be_private(
    store: MinioStore, server: S3Server | RGWServer
) -> None:
    make_public(store)
    assert is_public(store) and is_public(at(store, "private"))
    with pytest.raises(ConfigurationError, match="still public through a wider statement"):
        make_private(at(store, "private"))
    make_private(store)
    assert not is_public(store)
    with pytest.raises(Exception) as info:
        server.admin_client().get_bucket_policy(Bucket=store.bucket)
    assert "NoSuchBucketPolicy" in str(info.value)  # an empty policy is deleted


def test_read_only_role_cannot_share(
    store: MinioStore, server: S3Server | RGWServer, oidc_issuer: object
) -> None:
    token = oidc_issuer.mint(policy="readonly")  # type: ignore[attr-defined]
    options = {"endpoint_url": server.endpoint, "token": token, **sts_role(server, read_only=True)}
    with pytest.raises(PermissionError, match=r"GET the policy of bucket '.*' at .* denied"):
        make_public(f"{store.bucket}/shared", options)
