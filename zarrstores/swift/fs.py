"""``SwiftFileSystem``: fsspec's async filesystem for ``swift://<container>/<path>`` URLs."""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import functools
import os
from collections.abc import Mapping
from typing import IO, Any

from fsspec import register_implementation
from fsspec.asyn import AsyncFileSystem, sync, sync_wrapper
from fsspec.spec import AbstractBufferedFile

from .._files import (
    DOWNLOAD_PART,
    SPOOL_OPTIONS,
    CachedByIdentity,
    download,
    md5_of_file,
    open_for_upload,
    read_options,
)
from .._names import check_swift_container, no_container_error
from ._client import SwiftClient, client_from_options
from ._errors import SwiftError
from ._slo import SloWriter
from ._urls import check_account, quote_name, split_account

__all__ = ["SwiftFile", "SwiftFileSystem"]

_READ_CHUNK = DOWNLOAD_PART  # get_file's parts (a name the tests set)
_WRITE_BLOCK = 32 << 20  # put_file: files up to this are one verified PUT
# Options of the filesystem itself, not of the client.
_FS_OPTIONS = ("skip_instance_cache", "use_listings_cache", "listings_expiry_time", *SPOOL_OPTIONS)


class SwiftFileSystem(AsyncFileSystem, metaclass=CachedByIdentity):
    """Swift containers and objects as an fsspec filesystem (protocol ``swift``).

    Options (``storage_options``): an ``auth`` object, or ``authurl``/``user``/``key``
    (+ ``auth_version``, ``os_options``), or ``preauthurl``/``preauthtoken``, or
    ``anon=True`` with ``storage_url`` for public containers; else the environment
    (``OS_STORAGE_URL``+``OS_AUTH_TOKEN``, ``ST_AUTH``/``ST_USER``/``ST_KEY``, ``OS_*``).
    ``segment_size``: objects above it become Static Large Objects; ``max_concurrency``:
    requests in flight per event loop; ``retry``: a ``RetryPolicy``.

    URLs: ``swift://<container>/<path>``, or swiftspec's form
    ``swift://<host>/<account>/<container>/<path>`` when host and account are those of the
    credentials' storage URL (``ConfigurationError`` otherwise).

    Errors: missing -> ``FileNotFoundError``; refused -> ``PermissionError``; other
    failures -> ``SwiftError`` (an ``OSError``) with Swift's status and message.
    """

    protocol = ("swift",)
    root_marker = ""
    identity_options = ("auth",)  # Keystone auths print without their project, too

    def __init__(
        self,
        *,
        asynchronous: bool = False,
        loop: asyncio.AbstractEventLoop | None = None,
        batch_size: int | None = None,
        **storage_options: Any,
    ) -> None:
        storage_options.pop("auth_id", None)  # only a cache key, see CachedByIdentity
        url_account = storage_options.pop("url_account", None)
        fs_options = {k: storage_options.pop(k) for k in _FS_OPTIONS if k in storage_options}
        super().__init__(asynchronous=asynchronous, loop=loop, batch_size=batch_size, **fs_options)
        self.client: SwiftClient = client_from_options(storage_options)
        if url_account:  # from a swiftspec-style URL: it must name the credentials' account
            check_account(url_account, self.client.auth.get().storage_url)

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        return split_account(str(path).removeprefix("swift://").strip("/"))[1]

    @staticmethod
    def _get_kwargs_from_urls(path: str) -> dict[str, Any]:
        """``url_account`` of swiftspec's ``swift://<host>/<account>/<container>/<path>``,
        checked against the credentials' storage URL (the objects of ``swift://<container>/...``)."""
        path = str(path).removeprefix("swift://")
        location, rest = split_account(path.strip("/"))
        if not rest.partition("/")[0]:
            raise no_container_error(f"swift://{path}", "swift", "container")
        return {"url_account": location} if location else {}

    @staticmethod
    def split_path(path: str) -> tuple[str, str]:
        """``container/some/name`` -> ``("container", "some/name")``."""
        container, _, name = SwiftFileSystem._strip_protocol(path).partition("/")
        check_swift_container(container)
        return container, name

    # -- reading -------------------------------------------------------------------------------
    async def _cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        container, name = self._object(path)
        rng = None if start is None and end is None else (start or 0, end)
        data = await self.client.get(container, name, rng)
        if data is None:
            raise FileNotFoundError(f"swift://{container}/{name} not found")
        return data

    async def _info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        container, name = self.split_path(path)
        if not container:
            return _dir_info("")
        if not name:
            headers = await self.client.head_container(container)
            if headers is None:
                raise FileNotFoundError(f"swift://{container} not found")
            return _dir_info(
                container,
                int(headers.get("X-Container-Bytes-Used", 0)),
                count=int(headers.get("X-Container-Object-Count", 0)),
            )
        headers = await self.client.head(container, name)
        if headers is not None:
            return _file_info(container, name, headers)
        async for _ in self.client.list(container, name + "/", limit=1):
            return _dir_info(f"{container}/{name}")
        raise FileNotFoundError(f"swift://{container}/{name} not found")

    async def _ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        container, name = self.split_path(path)
        if not container:
            out = [
                _dir_info(c["name"], c.get("bytes", 0), count=c.get("count", 0))
                for c in await self.client.list_containers()
            ]
        else:
            prefix = f"{name}/" if name else ""
            out = [
                _entry_info(container, e) async for e in self.client.list(container, prefix, "/")
            ]
            if not out:
                info = await self._info(path)  # a file lists as itself; else not found
                out = [info] if info["type"] == "file" else []
        return out if detail else [o["name"] for o in out]

    async def _find(
        self,
        path: str,
        maxdepth: int | None = None,
        withdirs: bool = False,
        detail: bool = False,
        prefix: str = "",
        **kwargs: Any,
    ) -> Any:
        path = self._strip_protocol(path)
        container, name = self.split_path(path)
        if maxdepth is not None and maxdepth < 1:
            raise ValueError("maxdepth must be at least 1")
        if not container:
            found: dict[str, dict[str, Any]] = {}
            for c in await self.client.list_containers():
                found.update(await self._find(c["name"], maxdepth, withdirs, detail=True))
            return found if detail else sorted(found)
        base = f"{name}/" if name else ""
        out: dict[str, dict[str, Any]] = {}
        async for entry in self.client.list(container, base + prefix):
            rel = entry["name"][len(base) :]
            if maxdepth is None or rel.count("/") < maxdepth:
                info = _entry_info(container, entry)
                out[info["name"]] = info
            parts = rel.split("/")[:-1] if withdirs else []
            for i in range(1, min(len(parts), maxdepth or len(parts)) + 1):
                d = f"{container}/{base}{'/'.join(parts[:i])}"
                out.setdefault(d, _dir_info(d))
        if withdirs and out and path:
            out.setdefault(path, _dir_info(path))
        if not out and name and not prefix:
            headers = await self.client.head(container, name)
            if headers is not None:
                out[path] = _file_info(container, name, headers)
        return dict(sorted(out.items())) if detail else sorted(out)

    async def _get_file(self, rpath: str, lpath: str, **kwargs: Any) -> None:
        if os.path.isdir(lpath):
            return
        container, name = self.split_path(rpath)

        async def stat() -> tuple[int, str]:
            headers = await self.client.head(container, name)
            if headers is None:
                raise FileNotFoundError(f"swift://{container}/{name} not found")
            return int(headers.get("Content-Length", 0)), headers.get("Etag", "")

        async def read(start: int, end: int, etag: str) -> Any:
            return await self.client.get(container, name, (start, end), etag=etag)

        # Ranged reads, each retried on its own (a dropped connection costs one part).
        url = f"swift://{container}/{name}"
        await download(lpath, url, stat, read, SwiftError, part=_READ_CHUNK)

    # -- writing -------------------------------------------------------------------------------
    async def _pipe_file(
        self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any
    ) -> None:
        container, name = self._object(path)
        await self.client.put(container, name, value, exclusive=mode == "create")

    async def _put_file(
        self, lpath: str, rpath: str, mode: str = "overwrite", **kwargs: Any
    ) -> None:
        if os.path.isdir(lpath):
            return
        container, name = self._object(rpath)
        size = os.path.getsize(lpath)
        segment = await self.client.segment_size_for(size)
        exclusive = mode == "create"
        if size <= min(segment, _WRITE_BLOCK):
            with open(lpath, "rb") as f:
                await self.client.put(container, name, f.read(), exclusive=exclusive)
        elif size <= segment:
            headers = {"ETag": await asyncio.to_thread(md5_of_file, lpath)}
            body = functools.partial(open, lpath, "rb")  # a fresh file for each attempt
            await self.client._put(container, name, headers, body, exclusive=exclusive)
        else:
            writer = SloWriter(self.client, container, name, segment, exclusive=exclusive)
            with open(lpath, "rb") as f:
                step = range(0, size, _WRITE_BLOCK)
                await writer.write_all(await asyncio.to_thread(f.read, _WRITE_BLOCK) for _ in step)

    async def _cp_file(
        self, path1: str, path2: str, size: int | None = None, **kwargs: Any
    ) -> None:
        """Server-side copy (``X-Copy-From``: no byte passes through this machine), an SLO as its
        content; one above the cluster's ``max_file_size`` goes through here, as a new SLO.
        ``size``: the source's, when known from a listing (saves a HEAD request)."""
        src_container, src_name = self.split_path(path1)
        container, name = self._object(path2)
        if size is None:
            size = await self.client.head_size(src_container, src_name) if src_name else None
            if size is None:
                raise FileNotFoundError(f"swift://{src_container}/{src_name} not found")
        caps = await self.client.capabilities()
        if caps.max_file_size and size > caps.max_file_size:
            segment = await self.client.segment_size_for(size)
            await SloWriter(self.client, container, name, segment).write_all(
                await self._cat_file(path1, o, min(size, o + _READ_CHUNK))
                for o in range(0, size, _READ_CHUNK)
            )
            return
        copy = {"X-Copy-From": quote_name(src_container, src_name), "Content-Length": "0"}
        for _ in range(2):  # a 404 with the target container missing: create it, then again
            reply = await self.client.request(
                "PUT",
                quote_name(container, name),
                op="copy",
                container=container,
                headers=copy,
                data=b"",
                accept=(404,),
            )
            if reply.status != 404 or await self.client.head_container(container) is not None:
                break
            await self.client.create_container(container)
        if reply.status == 404:
            raise FileNotFoundError(f"swift://{src_container}/{src_name} not found")

    def _object(self, path: str) -> tuple[str, str]:
        """``split_path`` of an object's path (a GET of a container would answer its listing)."""
        container, name = self.split_path(path)
        if not name:
            raise IsADirectoryError(f"swift://{container} is a container, not an object")
        return container, name

    async def _rm(
        self,
        path: str | list[str],
        recursive: bool = False,
        batch_size: int | None = None,
        maxdepth: int | None = None,
        **kwargs: Any,
    ) -> None:
        found = 0
        named: dict[str, list[str]] = {}  # container -> names to delete if they exist
        for p in self._strip_protocol([path] if isinstance(path, str) else list(path)):
            container, name = self.split_path(p)
            if not container:
                raise PermissionError("refusing to delete every container of the account")
            if any(ch in p for ch in "*?["):
                for c, n in map(self.split_path, await self._glob(p, maxdepth=maxdepth)):
                    named.setdefault(c, []).append(n)
                continue
            if recursive:
                found += await self.client.delete_prefix(container, f"{name}/" if name else "")
            if name:
                named.setdefault(container, []).append(name)
        found += sum(await asyncio.gather(*(self.client.delete(c, n) for c, n in named.items())))
        if not found and not (recursive and not named):
            raise FileNotFoundError(f"nothing to delete at {path!r}")

    # -- containers ----------------------------------------------------------------------------
    async def _mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        container, name = self.split_path(path)
        if container and (create_parents or not name):
            await self.client.create_container(container)

    async def _makedirs(self, path: str, exist_ok: bool = False) -> None:
        container, name = self.split_path(path)
        if not exist_ok and not name and await self.client.head_container(container):
            raise FileExistsError(f"swift://{container} exists")
        await self.client.create_container(container)

    async def _rmdir(self, path: str) -> None:
        """Delete an empty container (objects' 'directories' need no removal)."""
        container, name = self.split_path(path)
        if container and not name:
            await self.client.delete_container(container)

    rmdir = sync_wrapper(_rmdir)

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> SwiftFile | IO[bytes]:
        if mode != "rb":
            self._object(path)
            return open_for_upload(self, path, mode, kwargs)
        return SwiftFile(self, path, mode, **read_options(kwargs))

    def modified(self, path: str) -> datetime.datetime:
        """When the object at ``path`` was last written (from Swift's ``Last-Modified``)."""
        info = self.info(path)
        if info["type"] != "file" or not info.get("last_modified"):
            raise IsADirectoryError(f"swift://{info['name']} is not an object")
        stamp = info["last_modified"]
        if stamp[:4].isdigit():  # listings give ISO 8601 in UTC, HEAD gives an HTTP date
            return datetime.datetime.fromisoformat(stamp).replace(tzinfo=datetime.UTC)
        return email.utils.parsedate_to_datetime(stamp)


class SwiftFile(AbstractBufferedFile):
    """A Swift object opened for reading, with ranged GETs (``fs.open(path, "wb")`` gives an
    :class:`~zarrstores._files.UploadOnClose` instead). Every block comes of the version
    opened: one replaced meanwhile raises ``SwiftError`` (412), as s3fs's files do."""

    fs: SwiftFileSystem

    def __init__(self, fs: SwiftFileSystem, path: str, mode: str = "rb", **kwargs: Any) -> None:
        super().__init__(fs, path, mode, **kwargs)
        # The version opened, where the object's HEAD was asked (a caller giving ``size``
        # spares that request, and the check with it, as s3fs does).
        self.etag = self.details.get("etag") if kwargs.get("size") is None else None

    def _fetch_range(self, start: int, end: int) -> bytes | bytearray:
        return sync(self.fs.loop, self._read, start, end)

    async def _read(self, start: int, end: int) -> bytes | bytearray:
        container, name = self.fs._object(self.path)
        url = f"swift://{container}/{name}"
        try:
            data = await self.fs.client.get(container, name, (start, end), etag=self.etag)
        except SwiftError as e:
            if e.status != 412:
                raise
            raise SwiftError(
                f"{url} was replaced after it was opened: open it again", status=412
            ) from None
        if data is None:
            raise FileNotFoundError(f"{url} was deleted after it was opened")
        return data  # type: ignore[return-value]  # (no numpy array without array=True)


# swiftspec registers "swift" too, and fsspec takes whichever entry point it finds first: once
# this module is imported, swift:// URLs are ours.
register_implementation("swift", SwiftFileSystem, clobber=True)


def _dir_info(name: str, size: int = 0, **more: Any) -> dict[str, Any]:
    return {"name": name, "size": size, "type": "directory", **more}


def _file_info(container: str, name: str, headers: Mapping[str, str]) -> dict[str, Any]:
    return {
        "name": f"{container}/{name}",
        "size": int(headers.get("Content-Length", 0)),
        "type": "file",
        "etag": headers.get("Etag", "").strip('"'),
        "last_modified": headers.get("Last-Modified"),
        "content_type": headers.get("Content-Type"),
        "slo": headers.get("X-Static-Large-Object", "").lower() == "true",
    }


def _entry_info(container: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    if "subdir" in entry:
        return _dir_info(f"{container}/{entry['subdir'].rstrip('/')}")
    return {
        "name": f"{container}/{entry['name']}",
        "size": entry.get("bytes", 0),
        "type": "file",
        "etag": entry.get("hash"),
        "last_modified": entry.get("last_modified"),
        "content_type": entry.get("content_type"),
        "slo": "slo_etag" in entry,
    }
