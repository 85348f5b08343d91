"""What both fsspec filesystems share: ``fs.open(url, "wb")`` gives an :class:`UploadOnClose`
(seekable, for formats that write a table of contents last: HDF5/netCDF4, zip; uploaded whole
on ``close()``), ``fs.open(url)`` reads through :class:`SmallReadBlockCache`, ``fs.get_file``
downloads one version of an object (:func:`download`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any

from fsspec.caching import BlockCache, register_cache
from fsspec.callbacks import DEFAULT_CALLBACK, Callback
from fsspec.spec import AbstractFileSystem

from ._transport import StorageError

DEFAULT_SPOOL_SIZE = 32 << 20
"""Bytes held in memory before the file moves to a local temporary file."""

SPOOL_OPTIONS = ("spool_dir", "spool_size")
"""``storage_options`` (and ``open()`` keywords) of files opened for writing."""

DOWNLOAD_PART = 16 << 20
"""``download`` reads this much per (retried) ranged GET."""
REREADS = 2
"""How often ``download`` starts again when the object changed under it."""

logger = logging.getLogger(__name__)


class CachedByIdentity(type(AbstractFileSystem)):  # type: ignore[misc]
    """fsspec reuses instances whose options print the same; credential objects print without
    their secrets, so the cache key also takes the identity of each of the class's
    ``identity_options`` (as ``<name>_id``): different credentials never share an instance."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        for name in cls.identity_options:
            if not isinstance(value := kwargs.get(name), str | os.PathLike | None):
                kwargs.setdefault(f"{name}_id", id(value))
        return super().__call__(*args, **kwargs)


class UploadOnClose(tempfile.SpooledTemporaryFile):  # type: ignore[type-arg]
    """A local, seekable file that becomes the object at ``path`` when closed without error.

    ``discard()`` drops it unsent; so do leaving a ``with`` block by an exception, garbage
    collection, and ``close()`` while an exception raised since the file was opened is handled
    (``fsspec.open``'s with block, or a library's cleanup after a failure, closes it whatever
    happened). ``close()`` raises what the upload raised; the object is then as it was."""

    def __init__(
        self,
        fs: AbstractFileSystem,
        path: str,
        *,
        exclusive: bool = False,
        spool_size: int | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        put_options: dict[str, Any] | None = None,
    ) -> None:
        self.spool_size = int(spool_size or DEFAULT_SPOOL_SIZE)
        super().__init__(max_size=self.spool_size, mode="w+b", dir=spool_dir)
        self.fs = fs
        self.path = path
        self.exclusive = exclusive
        self._put_options = put_options or {}
        self._outer_exception = sys.exception()  # being handled when the file was opened

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.fs.protocol[0]}://{self.path}>"

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.path

    def discard(self) -> None:
        """Drop what was written: nothing is uploaded, the temporary file is removed."""
        super().close()

    def close(self) -> None:
        """Upload the file and remove the temporary file (or discard it and log why, see above)."""
        if self.closed:
            return
        raised = sys.exception()
        if raised is not None and raised is not self._outer_exception:
            why = type(raised).__name__
            logger.warning("%r not uploaded: closed while a %s was raised", self, why)
            self.discard()
            return
        try:
            self._upload()
        finally:
            super().close()

    def __exit__(self, exc_type: Any, *args: Any) -> None:
        if exc_type is not None:
            self.discard()
        else:
            self.close()

    def __del__(self) -> None:
        # Never upload from the garbage collector: a file not closed is a file not finished.
        if not self.closed:
            self.discard()

    def _upload(self) -> None:
        size = self.seek(0, os.SEEK_END)
        self.seek(0)
        mode = "create" if self.exclusive else "overwrite"
        if size <= self.spool_size:
            self.fs.pipe_file(self.path, self.read(), mode=mode)
            return
        # Past spool_size the data is in an unnamed temporary file (SpooledTemporaryFile
        # moves it there on the write that crosses the limit): upload it by its descriptor.
        self.flush()
        self.fs.put_file(_descriptor_path(self.fileno()), self.path, mode=mode, **self._put_options)


def _descriptor_path(fd: int) -> str:
    """A path that opens the file behind ``fd`` anew (own offset), without it having a name."""
    for base in ("/proc/self/fd", "/dev/fd"):
        if os.path.isdir(base):
            return f"{base}/{fd}"
    raise OSError("files larger than spool_size need /proc/self/fd or /dev/fd on this system")


def open_for_upload(
    fs: AbstractFileSystem,
    path: str,
    mode: str,
    options: dict[str, Any],
    **put_options: Any,
) -> UploadOnClose:
    """The file ``fs.open(path, mode)`` returns for ``"wb"``/``"xb"``: ``spool_dir`` and
    ``spool_size`` from ``options`` (``open()``'s keywords), else the filesystem's
    ``storage_options``; ``put_options`` go to ``fs.put_file``. ``"xb"`` raises
    ``FileExistsError`` at once when the object exists (its upload is conditional too)."""
    if mode not in ("wb", "xb"):
        raise ValueError(f"mode {mode!r} is not supported for writing: use 'wb' or 'xb'")
    if mode == "xb" and fs.isfile(path):
        raise FileExistsError(f"{fs.protocol[0]}://{path} exists")
    if not options.get("autocommit", True):
        raise NotImplementedError(
            "fsspec transactions (autocommit=False) are not supported for writing: every file "
            "is uploaded whole when it is closed"
        )
    spool = {k: options.get(k, fs.storage_options.get(k)) for k in SPOOL_OPTIONS}
    return UploadOnClose(fs, path, exclusive="x" in mode, put_options=put_options, **spool)


READ_BLOCK_SIZE = 1 << 20
"""Block of the read cache: reading 1% of a 200 MB netCDF4 file costs 6 requests, 4 MiB."""


class SmallReadBlockCache(BlockCache):
    """fsspec's block cache for reads up to a block; a larger read is one ranged request of
    its own. HDF5's small metadata reads cost a few block requests, and a variable's data
    one request instead of one per block (``benchmarks/files.py`` measures both)."""

    name = "smallblocks"

    def _fetch(self, start: int | None, end: int | None) -> bytes:
        start = start or 0
        end = self.size if end is None else min(end, self.size)
        if end - start > self.blocksize:
            return self.fetcher(start, end)
        return super()._fetch(start, end)


register_cache(SmallReadBlockCache, clobber=True)


def md5_of_file(path: str | os.PathLike[str]) -> str:
    """The hex MD5 of a local file (what Swift and S3 state as ETag)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, lambda: hashlib.md5(usedforsecurity=False)).hexdigest()


def read_options(options: dict[str, Any]) -> dict[str, Any]:
    """``open()``'s keywords for reading, ``block_size``/``cache_type`` the caller's or ours."""
    return {
        **options,
        "block_size": options.get("block_size") or READ_BLOCK_SIZE,
        "cache_type": options.get("cache_type") or SmallReadBlockCache.name,
    }


async def download(
    lpath: str,
    url: str,
    stat: Callable[[], Awaitable[tuple[int, str]]],
    read: Callable[[int, int, str], Awaitable[Any]],
    changed: type[StorageError],
    *,
    part: int = DOWNLOAD_PART,
    window: int = 1,
    callback: Callback = DEFAULT_CALLBACK,
) -> None:
    """The object at ``url`` into the local file ``lpath``, one version of it: ``stat()`` gives
    its size and ETag, ``read(start, end, etag)`` a part (None when gone; ``changed`` with
    status 412 when of another ETag), ``window`` parts at once. A part of another version, or
    shorter than asked (gone, shrunk), starts the download again, up to ``REREADS`` times,
    then raises ``changed``: never a mix of two versions in the file."""
    for attempt in range(REREADS + 1):
        size, etag = await stat()
        callback.set_size(size)
        parts = [(start, min(size, start + part)) for start in range(0, size, part)]
        try:
            with open(lpath, "wb") as f:
                for i in range(0, len(parts), window):
                    batch = parts[i : i + window]
                    pieces = await asyncio.gather(*(read(*p, etag) for p in batch))
                    for (start, end), data in zip(batch, pieces, strict=True):
                        if data is None or len(data) != end - start:  # gone, or shrunk
                            text = f"{url} changed while it was read: read it again"
                            raise changed(text, status=412)
                        f.write(data)
                        callback.relative_update(len(data))
            return
        except StorageError as e:
            if e.status != 412 or attempt == REREADS:
                raise
            logger.info("%s changed while it was read: reading it again", url)
