"""What the Swift and S3 zarr stores share: the zarr ``Store`` and ``MutableMapping`` surfaces
over a small async driver that each backend provides.

Error policy (as zarr's own stores): only a missing object reads as missing (``None`` /
``KeyError``); auth, permission and server errors propagate, so they never read as fill values.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Iterable, Iterator, MutableMapping
from typing import Any, Protocol, Self
from urllib.parse import quote

from zarr.abc.store import (
    ByteRequest,
    OffsetByteRequest,
    RangeByteRequest,
    Store,
    SuffixByteRequest,
)
from zarr.core.buffer import Buffer, BufferPrototype, default_buffer_prototype
from zarr.core.sync import sync

# (start, end) with end exclusive; start < 0 means "the last -start bytes"; end None = to EOF
ByteRange = tuple[int, int | None]


def byte_range_of(byte_range: ByteRequest | None) -> ByteRange | None:
    """zarr's ``ByteRequest`` as fsspec's ``(start, end)`` (end exclusive, negative start: suffix);
    ``ValueError`` for others and for negative or inverted ranges (they would read other bytes)."""
    if byte_range is None:
        return None
    if isinstance(byte_range, RangeByteRequest):
        start, end = byte_range.start, byte_range.end
        if start < 0 or end < start:
            raise ValueError(
                f"byte range start={start}, end={end} is {'negative' if start < 0 else 'inverted'}"
                ": RangeByteRequest needs 0 <= start <= end (for the last n bytes use "
                "SuffixByteRequest(n))"
            )
        return (start, end)
    if isinstance(byte_range, OffsetByteRequest):
        if byte_range.offset < 0:
            raise ValueError(
                f"byte offset {byte_range.offset} is negative: OffsetByteRequest needs offset >= 0"
                " (for the last n bytes use SuffixByteRequest(n))"
            )
        return (byte_range.offset, None)
    if isinstance(byte_range, SuffixByteRequest):
        if byte_range.suffix < 0:
            raise ValueError(
                f"suffix length {byte_range.suffix} is negative: SuffixByteRequest(n) needs n >= 0"
            )
        # (0, 0): the last 0 bytes are none; (-0, None) would read the whole object.
        return (-byte_range.suffix, None) if byte_range.suffix else (0, 0)
    raise ValueError(f"Unexpected byte_range, got {byte_range!r}.")


class ObjectDriver(Protocol):
    """The object operations a backend provides to ``ObjectStore``; paths are full object
    names inside the container/bucket. Missing objects: ``get``/``head`` return None."""

    async def get(self, path: str, byte_range: ByteRange | None = None) -> bytes | None: ...

    async def head(self, path: str) -> int | None: ...

    async def put(self, path: str, data: bytes | memoryview) -> None:
        """Write ``data``: ``bytes``, or a view of zarr's buffer (sent as it is, no copy)."""

    async def put_if_absent(self, path: str, data: bytes | memoryview) -> bool:
        """One conditional write (``If-None-Match: *``): True if this call created the
        object, False if it existed (then it is left as it was)."""

    async def delete(self, paths: list[str]) -> None: ...

    def list(self, prefix: str, delimiter: str | None = None) -> AsyncIterator[tuple[str, bool]]:
        """(name, is_subdir) for each object (and, with a delimiter, each common prefix)."""


class ObjectStore(Store, MutableMapping):  # type: ignore[misc]
    """A zarr v3 store over a container/bucket and a key prefix, also a mapping of key to bytes;
    subclasses set ``protocol``, ``container_kind`` and the methods raising NotImplementedError."""

    protocol: str = ""
    container_kind: str = ""  # "Swift container", "S3 bucket"
    supports_writes = True
    supports_deletes = True
    supports_listing = True
    supports_partial_writes = False  # type: ignore[assignment]
    # The sync methods below serve the mapping API and callers that want them; zarr's
    # pipelines should keep using the concurrent async path for network I/O.
    _supports_sync_io = False

    def __init__(self, container: str, prefix: str = "", *, read_only: bool = False) -> None:
        super().__init__(read_only=read_only)
        container, word = container.strip("/"), self.container_kind.split()[-1]
        if not container:
            raise ValueError(
                f"no {word} given: pass the {self.container_kind}'s name, e.g. "
                f"{type(self).__name__}('my-data', 'path/in/it')"
            )
        if "/" in container:
            raise ValueError(
                f"{word} must be the {self.container_kind}'s name alone, got {container!r}: pass "
                "the part after the first '/' as prefix="
            )
        self.container = container
        self.prefix = prefix.strip("/")
        self._drivers: dict[asyncio.AbstractEventLoop, ObjectDriver] = {}

    # -- to implement --------------------------------------------------------------------------
    def _make_driver(self) -> ObjectDriver:
        """A driver bound to the running event loop."""
        raise NotImplementedError

    def _identity(self) -> tuple[Any, ...]:
        """What makes two stores of this kind point at the same data (endpoint, account...)."""
        raise NotImplementedError

    # -- helpers -------------------------------------------------------------------------------
    def _driver(self) -> ObjectDriver:
        loop = asyncio.get_running_loop()
        driver = self._drivers.get(loop)
        if driver is None:
            for old in [lp for lp in self._drivers if lp.is_closed()]:
                del self._drivers[old]
            driver = self._drivers[loop] = self._make_driver()
        return driver

    def _path(self, key: str) -> str:
        key = key.lstrip("/")
        return f"{self.prefix}/{key}" if self.prefix else key

    def _object_path(self, key: str) -> str:
        """``_path(key)`` for a key that names an object; ``ValueError`` otherwise."""
        self._check_key(key)
        return self._path(key)

    def _check_key(self, key: str) -> None:
        """Raise ``ValueError`` for a key no object can have (backends add their rules); an
        empty key would address the container itself (a listing read, a container write)."""
        if not key.strip("/"):
            raise ValueError(
                f"empty key {key!r} in {self.fsspec_url}: a key names an object, e.g. 'zarr.json'"
            )
        if "\x00" in key:
            raise ValueError(
                f"key {key!r} contains a NUL character, which no object name may have: remove it"
            )
        try:
            if not key.isascii():  # ASCII always encodes: the common case skips the encoding
                key.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                f"key {key!r} is not valid Unicode (it holds lone surrogates): decode the name "
                "from its bytes with the right encoding"
            ) from None

    def _check_writable(self) -> None:
        if self.read_only:
            raise ValueError(
                "store was opened in read-only mode and does not support writing: "
                f"{self.fsspec_url} has read_only=True; open it with read_only=False "
                "(zarr/xarray mode 'r+', 'a' or 'w') to write"
            )

    @property
    def fsspec_url(self) -> str:
        """``<protocol>://<container>/<prefix>``: the same data as a URL for xarray/fsspec."""
        return f"{self.protocol}://{self.container}/{self.prefix}".rstrip("/")

    @property
    def url(self) -> str:
        """The HTTP(S) address of the store's root, as zarr-swiftstore's ``url``: an object's
        is ``url + "/" + key`` (for ``fsspec.get_mapper`` over HTTP, ``requests``...)."""
        root = self._http_root().rstrip("/")  # the container holds no '/' (checked above)
        return f"{root}/{quote(self.container)}/{quote(self.prefix)}".rstrip("/")

    def _http_root(self) -> str:
        """The HTTP(S) URL the container/bucket names are relative to."""
        raise NotImplementedError

    def __repr__(self) -> str:
        mode = ", read_only=True" if self.read_only else ""
        return f"{type(self).__name__}({self.fsspec_url!r}{mode})"

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and isinstance(other, ObjectStore)
            and (other.container, other.prefix, other.read_only, other._identity())
            == (self.container, self.prefix, self.read_only, self._identity())
        )

    __hash__ = None  # type: ignore[assignment]  # mutable mapping

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_drivers": {}}  # sockets stay behind; the copy opens its own

    def with_read_only(self, read_only: bool = False) -> Self:
        """The same location with another ``read_only`` setting (not opened), sharing this
        store's client and credentials (zarr makes a read-only twin for every ``mode="r"`` open)."""
        store = copy.copy(self)  # by __getstate__: drivers of its own
        store._read_only, store._is_open = read_only, False
        return store

    # -- zarr Store ----------------------------------------------------------------------------
    async def get(
        self,
        key: str,
        prototype: BufferPrototype | None = None,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        """The value of ``key`` (or the requested bytes of it); None when it does not exist."""
        rng = byte_range_of(byte_range)
        path = self._object_path(key)
        if not self._is_open:
            await self._ensure_open()
        data = await self._driver().get(path, rng)
        if data is None:
            return None
        return (prototype or default_buffer_prototype()).buffer.from_bytes(data)

    async def get_partial_values(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        """Several (key, range) reads, concurrently."""
        return list(await asyncio.gather(*(self.get(k, prototype, r) for k, r in key_ranges)))

    async def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""
        return await self._driver().head(self._object_path(key)) is not None

    async def getsize(self, key: str) -> int:
        """Size of ``key`` in bytes; ``FileNotFoundError`` when it does not exist."""
        size = await self._driver().head(self._object_path(key))
        if size is None:
            raise FileNotFoundError(f"{self.fsspec_url}/{key} does not exist")
        return size

    async def set(self, key: str, value: Buffer) -> None:
        """Store ``value`` under ``key``."""
        path, data = await self._to_write(key, value)
        await self._driver().put(path, data)

    async def _to_write(self, key: str, value: Buffer) -> tuple[str, Any]:
        """The object path and bytes of a write of ``value`` under ``key``, once it may go."""
        self._check_writable()
        if not isinstance(value, Buffer):
            raise TypeError(f"expected a zarr Buffer, got {type(value).__name__}")
        path = self._object_path(key)
        if not self._is_open:
            await self._ensure_open()
        # A view of zarr's buffer, not a copy: both clients send from it (a shard's size less
        # memory at its write).
        return path, value.as_buffer_like()

    async def set_if_not_exists(self, key: str, value: Buffer) -> None:
        """Store ``value`` under ``key`` unless ``key`` exists: one conditional write
        (``If-None-Match: *``). On S3, of writers racing on a key exactly one creates it; Swift
        refuses the write when the key exists but is not atomic between racing writers, and
        Ceph RGW's Swift API looks first (docs/switching.md, docs/rgw.md)."""
        path, data = await self._to_write(key, value)
        await self._driver().put_if_absent(path, data)

    async def delete(self, key: str) -> None:
        """Delete ``key``; a missing key is not an error."""
        self._check_writable()
        await self._driver().delete([self._object_path(key)])

    async def delete_dir(self, prefix: str) -> None:
        """Delete every key under ``prefix``, in batches (bulk delete where the server has it)."""
        self._check_writable()
        prefix = prefix.strip("/")
        await self._delete_prefix(self._path(prefix + "/" if prefix else ""))

    async def _delete_prefix(self, full: str) -> None:
        """Delete every object whose name starts with ``full``."""
        paths = [p async for p, _ in self._driver().list(full)]
        if paths:
            await self._driver().delete(paths)

    def list(self) -> AsyncIterator[str]:
        """Every key in the store."""
        return self.list_prefix("")

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:  # type: ignore[override]
        """Every key that starts with ``prefix``."""
        skip = len(self.prefix) + 1 if self.prefix else 0
        async for path, _ in self._driver().list(self._path("") + prefix.lstrip("/")):
            yield path[skip:]

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:  # type: ignore[override]
        """Names of the keys and sub-prefixes directly under ``prefix``."""
        prefix = prefix.strip("/")
        full = self._path(prefix + "/" if prefix else "")  # "" or ending in "/"
        async for path, _ in self._driver().list(full, "/"):
            name = path[len(full) :].rstrip("/")
            if name:
                yield name

    # -- synchronous surface (zarr's SupportsSyncStore; used by the mapping API) ---------------
    def get_sync(
        self,
        key: str,
        *,
        prototype: BufferPrototype | None = None,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        """``get`` from synchronous code."""
        return sync(self.get(key, prototype or default_buffer_prototype(), byte_range))

    def set_sync(self, key: str, value: Buffer) -> None:
        """``set`` from synchronous code."""
        sync(self.set(key, value))

    def delete_sync(self, key: str) -> None:
        """``delete`` from synchronous code."""
        sync(self.delete(key))

    # -- MutableMapping (zarr-swiftstore style) ------------------------------------------------
    def __getitem__(self, key: str) -> bytes:
        value = self.get_sync(key)
        if value is None:
            raise KeyError(key)
        return value.to_bytes()

    def __setitem__(self, key: str, value: bytes | bytearray | memoryview | Buffer) -> None:
        if not isinstance(value, Buffer):
            value = default_buffer_prototype().buffer.from_bytes(bytes(value))
        self.set_sync(key, value)

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self.delete_sync(key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and sync(self.exists(key))

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def keys(self) -> list[str]:  # type: ignore[override]
        """All keys, sorted (a list, as zarr-swiftstore returns)."""
        return sorted(sync(_collect(self.list())))

    def listdir(self, path: str = "") -> list[str]:
        """Sorted names directly under ``path`` (keys and sub-prefixes)."""
        return sorted(sync(_collect(self.list_dir(path))))

    def rmdir(self, path: str = "") -> None:
        """Delete everything under ``path`` (the whole store for ``""``)."""
        sync(self.delete_dir(path))


async def _collect(names: AsyncIterator[str]) -> list[str]:
    return [name async for name in names]
