"""SQL over a table's Parquet files through DataFusion, reading only what the query needs:
DataFusion pushes projection and filters into a ``pyarrow.dataset`` on the store's fsspec
filesystem (same auth), which reads the footer, then only the needed column chunks of the row
groups whose statistics can match, with ranged GETs (no read-ahead cache, no HEAD per file)."""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads
from pyarrow.fs import FSSpecHandler, PyFileSystem

from ._modes import SQLError


class _RangedReads(FSSpecHandler):
    """pyarrow's fsspec bridge, opening files with their known size and no cache, so that
    every read pyarrow asks for is one ranged GET of exactly that range."""

    def __init__(self, fs: Any, sizes: dict[str, int]) -> None:
        super().__init__(fs)
        self.sizes = sizes

    def open_input_file(self, path: str) -> pa.PythonFile:
        size = self.sizes.get(path)
        handle = self.fs.open(path, mode="rb", cache_type="none", size=size, block_size=1 << 20)
        return pa.PythonFile(handle, mode="r")


def table_dataset(fs: Any, files: dict[str, int], schema: pa.Schema) -> pads.Dataset:
    """The Parquet ``files`` (path -> size) as one dataset with ``schema``."""
    pafs = PyFileSystem(_RangedReads(fs, files))
    fmt = pads.ParquetFileFormat(
        default_fragment_scan_options=pads.ParquetFragmentScanOptions(pre_buffer=True)
    )
    return pads.dataset(list(files), schema=schema, format=fmt, filesystem=pafs)


def run_sql(name: str, dataset: pads.Dataset, sql: str) -> pa.Table:
    """The result of ``sql`` with the table registered as ``name``; ``SQLError`` naming the
    problem when DataFusion refuses or cannot evaluate it. Storage errors met while scanning keep
    their kind (``PermissionError``, ``FileNotFoundError``, else ``OSError``), not a bad query's."""
    from datafusion import SessionContext

    ctx = SessionContext()
    ctx.register_dataset(name, dataset)
    try:
        frame = ctx.sql(sql)
    except ValueError as e:  # parse and planning errors
        raise SQLError(_first_line(e, name)) from None
    try:
        return frame.to_arrow_table()
    except Exception as e:  # DataFusion raises plain Exceptions while executing
        external = _EXTERNAL.search(str(e))
        if external is None:
            raise SQLError(_first_line(e, name)) from None
        kind = _STORAGE_ERRORS.get(external.group(1), OSError)
        raise kind(f"reading table {name}: {external.group(2)[:160]}") from None


_EXTERNAL = re.compile(r"External error: (\w+): (.*)")
_STORAGE_ERRORS = {e.__name__: e for e in (PermissionError, FileNotFoundError)}


def _first_line(error: Exception, name: str) -> str:
    """DataFusion's message, first line, short enough to read, saying which table."""
    message = " ".join(str(error).split("\n")[:2]).strip()
    return f"{message[:150]} (SQL on table {name[:40]})"
