"""Fixtures for the S3 side: a test OIDC issuer and SeaweedFS S3 servers with STS trusting it."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from zarrstores.devserver.oidc import OIDCIssuer
from zarrstores.devserver.s3 import S3Server

__all__ = ["S3_SHORT_SESSION", "bucket", "oidc_issuer", "s3_server", "s3_short", "token_file"]

# Every session on ``s3_short`` ends after this long: long enough for a few requests on a
# loaded 2-core box, short enough that expiry tests wait only seconds.
S3_SHORT_SESSION = 8.0


@pytest.fixture(scope="session")
def oidc_issuer() -> Iterator[OIDCIssuer]:
    """The OIDC issuer every S3 server of the session trusts."""
    with OIDCIssuer() as issuer:
        yield issuer


@pytest.fixture(scope="session")
def s3_server(
    oidc_issuer: OIDCIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[S3Server]:
    """SeaweedFS S3 with STS; sessions last up to an hour."""
    with S3Server(oidc_issuer, tmp_path_factory.mktemp("s3"), max_session="1h") as server:
        yield server


@pytest.fixture(scope="session")
def s3_short(
    oidc_issuer: OIDCIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[S3Server]:
    """A second SeaweedFS whose STS sessions all end after ``S3_SHORT_SESSION`` seconds."""
    with S3Server(
        oidc_issuer,
        tmp_path_factory.mktemp("s3short"),
        max_session=f"{S3_SHORT_SESSION:.0f}s",
        token_duration=f"{S3_SHORT_SESSION:.0f}s",
    ) as server:
        yield server


@pytest.fixture
def token_file(oidc_issuer: OIDCIssuer, tmp_path: Path) -> Path:
    """A file holding a fresh read-write token (mode 0600), as sts-wire or oidc-agent leave it."""
    path = tmp_path / "token"
    oidc_issuer.write_token(path)
    return path


@pytest.fixture
def bucket(s3_server: S3Server) -> Iterator[str]:
    """A new empty bucket on ``s3_server`` (made with the admin keys); removed afterwards."""
    name = f"test-{uuid.uuid4().hex[:16]}"
    client = s3_server.admin_client()
    client.create_bucket(Bucket=name)
    yield name
    # The server deletes non-empty buckets (-s3.allowDeleteBucketNotEmpty defaults to true).
    with contextlib.suppress(Exception):
        client.delete_bucket(Bucket=name)
