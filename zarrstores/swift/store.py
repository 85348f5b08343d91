"""``SwiftStore``: a zarr v3 store (and a mapping of key to bytes) in a Swift container."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from .._names import check_swift_container
from .._store import ByteRange, ObjectStore
from ._client import SwiftClient, client_from_options


@dataclass(slots=True)
class _ContainerDriver:
    """``ObjectDriver`` over one container: the names are object names in it."""

    client: SwiftClient
    container: str

    async def get(self, path: str, byte_range: ByteRange | None = None) -> Any:
        # zarr takes any buffer: a large object comes as a numpy array (cheaper to fill).
        return await self.client.get(self.container, path, byte_range, array=True)

    async def head(self, path: str) -> int | None:
        return await self.client.head_size(self.container, path)

    async def put(self, path: str, data: bytes | memoryview) -> None:
        await self.client.put(self.container, path, data)

    async def put_if_absent(self, path: str, data: bytes | memoryview) -> bool:
        try:
            await self.client.put(self.container, path, data, exclusive=True)
        except FileExistsError:
            return False
        return True

    async def delete(self, paths: list[str]) -> None:
        await self.client.delete(self.container, paths)

    async def list(
        self, prefix: str, delimiter: str | None = None
    ) -> AsyncIterator[tuple[str, bool]]:
        async for entry in self.client.list(self.container, prefix, delimiter):
            name = entry.get("name")
            yield (name, False) if name is not None else (entry["subdir"], True)


class SwiftStore(ObjectStore):
    """A zarr v3 store under ``prefix`` in Swift container ``container``; also a
    ``MutableMapping`` of key to bytes with ``keys()``, ``listdir()``, ``url`` (the HTTP(S)
    address of its root, authenticating if needed) and ``fsspec_url`` (``swift://...``).

    ``storage_options`` are those of ``swift://`` URLs (``authurl``/``user``/``key``,
    ``preauthurl``/``preauthtoken``, ``os_options``, ``anon`` + ``storage_url``, an ``auth``
    object, ``segment_size``...); without them the environment is used (``ST_AUTH``...,
    ``OS_*``). The container is created by the first write, never by opening. A missing key
    reads as missing; auth and server errors raise (``PermissionError``, ``SwiftError``).
    Raises ``ConfigurationError`` (a ``ValueError``) when no credentials are found.
    """

    protocol = "swift"
    container_kind = "Swift container"

    def __init__(
        self,
        container: str,
        prefix: str = "",
        storage_options: Mapping[str, Any] | None = None,
        *,
        read_only: bool = False,
    ) -> None:
        super().__init__(container, prefix, read_only=read_only)
        check_swift_container(self.container)
        self.storage_options = dict(storage_options or {})
        self.client = client_from_options(self.storage_options)

    def _make_driver(self) -> _ContainerDriver:
        return _ContainerDriver(self.client, self.container)

    def _identity(self) -> tuple[Any, ...]:
        auth = self.client.auth
        return (type(auth), auth.describe(), auth.storage_url_override)

    def _http_root(self) -> str:
        return self.client.auth.get().storage_url  # authenticates if needed

    public_url = ObjectStore.url  # with a public ACL, anyone can read public_url + "/" + key

    async def _delete_prefix(self, full: str) -> None:
        await self.client.delete_prefix(self.container, full)  # one listing, then bulk delete

    async def aclose(self) -> None:
        """Close the connections of the running event loop."""
        await self.client.close()
