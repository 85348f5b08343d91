"""Files on both backends: ``fs.open(url, "wb")`` returns an :class:`UploadOnClose`, seekable
(for formats that write a table of contents at the end: HDF5/netCDF4, zip) and uploaded whole
on ``close()`` with the filesystem's own verified writes; ``fs.open(url)`` reads through
:class:`SmallReadBlockCache` (HDF5's scattered small metadata reads, then whole variables).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
from typing import Any

from fsspec.caching import BlockCache, register_cache
from fsspec.spec import AbstractFileSystem

DEFAULT_SPOOL_SIZE = 32 << 20
"""Bytes held in memory before the file moves to a local temporary file."""

SPOOL_OPTIONS = ("spool_dir", "spool_size")
"""``storage_options`` (and ``open()`` keywords) of files opened for writing."""

logger = logging.getLogger(__name__)


class UploadOnClose(tempfile.SpooledTemporaryFile):  # type: ignore[type-arg]
    """A local, seekable file that becomes the object at ``path`` when closed without error.

    ``discard()`` (and leaving a ``with`` block by an exception, also that of
    ``fsspec.open``) drops it without sending anything; so does garbage collection of a file
    that was never closed, and ``close()`` while an exception raised since it was opened is
    being handled. ``close()`` raises what the upload raised, and the object at ``path`` is
    then as it was before.
    """

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
        """Upload the file and remove the temporary file; discard it instead (and log why)
        when closed while an exception raised since it was opened is on its way: in the exit
        of a with block that raised (``fsspec.open``'s closes its file whatever happened), or
        in the cleanup of a library that failed half-way."""
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
        local = _descriptor_path(self.fileno())
        self.fs.put_file(local, self.path, mode=mode, **self._put_options)


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
    ``storage_options``; ``put_options`` go to ``fs.put_file``."""
    if mode not in ("wb", "xb"):
        raise ValueError(f"mode {mode!r} is not supported for writing: use 'wb' or 'xb'")
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


def read_options(block_size: int | None, cache_type: str | None) -> dict[str, Any]:
    """``block_size``/``cache_type`` for a file opened for reading: the caller's, else ours."""
    return {
        "block_size": block_size or READ_BLOCK_SIZE,
        "cache_type": cache_type or SmallReadBlockCache.name,
    }


def md5_of_file(path: str | os.PathLike[str]) -> str:
    """The hex MD5 of a local file, read 16 MiB at a time (what Swift and S3 state as ETag)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(16 << 20):
            digest.update(block)
    return digest.hexdigest()
