"""Ceph RGW fixtures: one cluster (mon, memstore OSD, radosgw) for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fixtures_swift import memory_dir

from zarrstores.devserver.oidc import OIDCIssuer
from zarrstores.devserver.rgw import RGWServer

__all__ = ["rgw_server"]


@pytest.fixture(scope="session")
def rgw_server(
    oidc_issuer: OIDCIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RGWServer]:
    """RGW with account-less storage URLs (``/swift/v1``), S3 and STS trusting ``oidc_issuer``:
    shared by the session, so use fresh containers and buckets."""
    with memory_dir(tmp_path_factory, "rgw") as base, RGWServer(oidc_issuer, base) as server:
        yield server
