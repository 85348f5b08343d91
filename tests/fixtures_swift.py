"""Swift (+ Keystone) fixtures: one real server set per test session."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from zarrstores.devserver.oidc import OIDCIssuer
from zarrstores.devserver.swift import SwiftServer

__all__ = ["memory_dir", "swift_container", "swift_faults", "swift_server"]


@contextlib.contextmanager
def memory_dir(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    """A directory on tmpfs when the machine has one: Swift's object writes wait on fsync,
    and on tmpfs they are about twice as fast, which shortens the whole suite."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        yield tmp_path_factory.mktemp(name)
        return
    base = Path(tempfile.mkdtemp(prefix=f"zarrstores-{name}-", dir=shm))
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def swift_server(
    tmp_path_factory: pytest.TempPathFactory, oidc_issuer: OIDCIssuer
) -> Iterator[SwiftServer]:
    """Swift with tempauth and Keystone, shared by the whole session: use fresh containers.
    Keystone is federated with the session's OIDC issuer, the one the S3 servers trust."""
    with (
        memory_dir(tmp_path_factory, "swift") as base,
        SwiftServer(base / "swift", keystone=True, oidc_issuer=oidc_issuer) as server,
    ):
        yield server


@pytest.fixture
def swift_container() -> str:
    """A container name no other test uses (not created: the test does that its own way)."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def swift_faults(swift_server: SwiftServer) -> Iterator[SwiftServer]:
    """The session's server, for tests that inject faults: they are cleared afterwards."""
    swift_server.clear_faults()
    yield swift_server
    swift_server.clear_faults()
