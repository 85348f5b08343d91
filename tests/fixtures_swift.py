"""Swift (+ Keystone) fixtures: one real server set per test session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from zarrstores.devserver.swift import SwiftServer

__all__ = ["swift_container", "swift_faults", "swift_server"]


@pytest.fixture(scope="session")
def swift_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwiftServer]:
    """Swift with tempauth and Keystone, shared by the whole session: use fresh containers."""
    with SwiftServer(tmp_path_factory.mktemp("swift"), keystone=True) as server:
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
