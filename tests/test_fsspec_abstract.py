"""fsspec's own conformance suite (``fsspec.tests.abstract``: copy, get, put, open, pipe) on
``swift://`` and ``minio://``, derived as s3fs derives it (s3fs/tests/derived/)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import fsspec.tests.abstract as abstract
import pytest
from fixtures_swift import memory_dir

from zarrstores.devserver.oidc import OIDCIssuer
from zarrstores.devserver.s3 import S3Server
from zarrstores.devserver.swift import SwiftServer
from zarrstores.minio import MinioFileSystem
from zarrstores.swift import SwiftFileSystem


@pytest.fixture(scope="module")
def memory_swift(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwiftServer]:
    """A Swift of its own with its data in memory: the suite writes thousands of small
    objects, and Swift's writes wait on fsync (on tmpfs they are about twice as fast)."""
    with memory_dir(tmp_path_factory, "abstract") as base, SwiftServer(base / "swift") as server:
        yield server


class SwiftFixtures(abstract.AbstractFixtures):
    @pytest.fixture(scope="class")
    @classmethod
    def fs(cls, memory_swift: SwiftServer) -> Iterator[SwiftFileSystem]:
        fs = SwiftFileSystem(
            authurl=memory_swift.auth_url,
            user="test:tester",
            key="testing",
            skip_instance_cache=True,
        )
        yield fs

    @pytest.fixture(scope="class")
    @classmethod
    def _container(cls, fs: SwiftFileSystem) -> Iterator[str]:
        name = f"abstract-{uuid.uuid4().hex[:10]}"
        fs.mkdir(name)
        yield name
        fs.rm(name, recursive=True)
        fs.rmdir(name)

    @pytest.fixture
    def fs_path(self, _container: str) -> str:
        return _container

    @pytest.fixture
    def supports_empty_directories(self) -> bool:
        return False  # object stores have no directories, only names with slashes


class MinioFixtures(abstract.AbstractFixtures):
    @pytest.fixture(scope="class")
    def fs(
        self, s3_server: S3Server, oidc_issuer: OIDCIssuer, tmp_path_factory: Any
    ) -> Iterator[MinioFileSystem]:
        token = tmp_path_factory.mktemp("abstract") / "token"
        oidc_issuer.write_token(token)
        yield MinioFileSystem(
            endpoint_url=s3_server.endpoint, token=token, skip_instance_cache=True
        )

    @pytest.fixture(scope="class")
    @classmethod
    def _bucket(cls, fs: MinioFileSystem) -> Iterator[str]:
        name = f"abstract-{uuid.uuid4().hex[:10]}"
        fs.mkdir(name)
        yield name
        fs.rm(name, recursive=True)

    @pytest.fixture
    def fs_path(self, _bucket: str) -> str:
        return _bucket

    @pytest.fixture
    def supports_empty_directories(self) -> bool:
        return False


class TestSwiftCopy(abstract.AbstractCopyTests, SwiftFixtures):
    pass


class TestSwiftGet(abstract.AbstractGetTests, SwiftFixtures):
    pass


class TestSwiftPut(abstract.AbstractPutTests, SwiftFixtures):
    pass


class TestSwiftOpen(abstract.AbstractOpenTests, SwiftFixtures):
    pass


class TestSwiftPipe(abstract.AbstractPipeTests, SwiftFixtures):
    pass


class TestMinioCopy(abstract.AbstractCopyTests, MinioFixtures):
    pass


class TestMinioGet(abstract.AbstractGetTests, MinioFixtures):
    pass


class TestMinioPut(abstract.AbstractPutTests, MinioFixtures):
    pass


class TestMinioOpen(abstract.AbstractOpenTests, MinioFixtures):
    pass


class TestMinioPipe(abstract.AbstractPipeTests, MinioFixtures):
    pass
