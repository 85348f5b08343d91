"""The objects under one location, as the copy engine sees them: list with sizes and MD5s,
read, write whole, delete, through the fsspec filesystems' async methods; local trees write
each file under a temporary name and rename it, so no file is ever half there."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fsspec.asyn import AsyncFileSystem
from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper
from fsspec.implementations.local import LocalFileSystem

from .._files import md5_of_file
from ._common import Location

READ_BLOCK = 16 << 20  # large objects are read and hashed this much at a time
S3_COPY_LIMIT = 5 << 30  # the largest object one S3 CopyObject copies
PARTIAL = ".zarrstores-partial-"  # local files being written; never listed
_HOST = socket.gethostname()
_MD5 = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Stored:
    """One stored object: its size and, when the backend states it, the MD5 of its content
    (Swift's ETag of a plain object, S3's ETag of a single-part upload; None for Swift SLOs,
    S3 multipart uploads and local files, whose MD5 is computed when needed)."""

    size: int
    md5: str | None = None


def _stored(info: Mapping[str, Any]) -> Stored:
    etag = str(info.get("etag") or info.get("ETag") or "").strip('"').lower()
    md5 = etag if _MD5.match(etag) and not info.get("slo") else None
    return Stored(int(info.get("size") or 0), md5)


class Tree:
    """Objects under ``location``, named relative to it (``""`` is the location itself),
    through its fsspec filesystem's async methods."""

    local = False

    def __init__(self, location: Location, fs: AsyncFileSystem) -> None:
        self.location = location
        self.fs = fs

    async def list(self) -> dict[str, Stored]:
        self.fs.invalidate_cache()
        base = self.location.path
        try:
            found = await self.fs._find(base, detail=True)
        except FileNotFoundError:
            return {}
        return {
            "" if name == base else name[len(base) + 1 :]: _stored(info)
            for name, info in found.items()
            if info.get("type") != "directory" and (name == base or name.startswith(base + "/"))
        }

    async def stat(self, rel: str) -> Stored | None:
        self.fs.invalidate_cache()
        try:
            info = await self.fs._info(self.location.child(rel))
        except FileNotFoundError:
            return None
        return _stored(info) if info.get("type") == "file" else None

    async def read(self, rel: str) -> bytes:
        return await self.fs._cat_file(self.location.child(rel))

    async def write(self, rel: str, data: bytes) -> None:
        await self.fs._pipe_file(self.location.child(rel), data)

    async def as_file(self, rel: str, tmp: str) -> Path:
        """The object as a local file: downloaded into the directory ``tmp``."""
        file = Path(tmp) / "object"
        await self.fs._get_file(self.location.child(rel), str(file))
        return file

    async def upload(self, rel: str, file: Path) -> None:
        """Store the local ``file`` as the object, whole (multipart / SLO when large)."""
        await self.fs._put_file(str(file), self.location.child(rel))

    async def md5(self, rel: str) -> str:
        path = self.location.child(rel)
        size = (await self.fs._info(path))["size"]
        digest = hashlib.md5(usedforsecurity=False)
        for start in range(0, size, READ_BLOCK):
            digest.update(await self.fs._cat_file(path, start, min(size, start + READ_BLOCK)))
        return digest.hexdigest()

    async def delete(self, rels: list[str]) -> None:
        if rels:
            await self.fs._rm([self.location.child(rel) for rel in rels])

    async def prepare(self) -> None:
        """Create what writes need first (container, bucket, directory)."""
        top = self.location.path.split("/", 1)[0]
        await self.fs._makedirs(top, exist_ok=True)

    async def copy_from(self, other: Tree, rel: str, dst_rel: str, size: int) -> None:
        """Copy ``other``'s object ``rel`` to ``dst_rel`` on the server: no byte passes
        through this machine."""
        source, target = other.location.child(rel), self.location.child(dst_rel)
        if self.location.scheme == "swift":
            await self.fs._cp_file(source, target, size=size)  # PUT with X-Copy-From
        elif size <= S3_COPY_LIMIT:
            await self.fs._copy_basic(source, target)  # CopyObject
        else:
            await self.fs._cp_file(source, target)  # UploadPartCopy, part by part


def _remove_if_abandoned(path: Path) -> None:
    """Delete a partial file that a copy killed on this machine (SIGKILL, power cut) left:
    its name holds the host and process id of its writer, which is no longer running."""
    host, _, pid = path.name.partition(PARTIAL)[2].rpartition("-")[0].rpartition("-")
    if host != _HOST or not pid.isdigit():
        return  # another machine's copy, or an older name: leave it
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        path.unlink(missing_ok=True)
    except PermissionError:
        pass  # a running process of another user


class LocalTree(Tree):
    """Files under a local directory (or one file), through fsspec's local filesystem; each
    file is written under a temporary name and renamed."""

    local = True

    def __init__(self, location: Location) -> None:
        super().__init__(location, AsyncFileSystemWrapper(LocalFileSystem(), asynchronous=True))

    async def list(self) -> dict[str, Stored]:
        found = await super().list()
        for rel in [rel for rel in found if PARTIAL in rel.rsplit("/", 1)[-1]]:
            del found[rel]
            _remove_if_abandoned(Path(self.location.child(rel)))
        return found

    async def write(self, rel: str, data: bytes) -> None:
        await asyncio.to_thread(self._replace, rel, lambda tmp: tmp.write_bytes(data))

    async def upload(self, rel: str, file: Path) -> None:
        await asyncio.to_thread(self._replace, rel, lambda tmp: shutil.copyfile(file, tmp))

    def _replace(self, rel: str, fill: Any) -> None:
        """Write through a temporary file beside the target, then rename: a reader (or an
        interrupted copy) sees the old file or the new one, never a part."""
        target = Path(self.location.child(rel))
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(
            f".{target.name}{PARTIAL}{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        )
        try:
            fill(tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    async def md5(self, rel: str) -> str:
        return await asyncio.to_thread(md5_of_file, self.location.child(rel))

    async def delete(self, rels: list[str]) -> None:
        for rel in rels:  # a file already gone is no error, as for S3's DeleteObjects
            Path(self.location.child(rel)).unlink(missing_ok=True)

    async def prepare(self) -> None:
        Path(self.location.path).parent.mkdir(parents=True, exist_ok=True)

    async def as_file(self, rel: str, tmp: str) -> Path:
        return Path(self.location.child(rel))  # read in place
