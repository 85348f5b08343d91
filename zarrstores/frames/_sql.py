"""SQL over a table's Parquet files through DataFusion, reading only what the query needs.

The files are a ``pyarrow.dataset`` on the store's fsspec filesystem (so the same auth and
refresh apply); DataFusion pushes the projection and the filters into the dataset scan, and
pyarrow reads the footer, then only the needed column chunks of the row groups whose
statistics can match, each with ranged GETs (no read-ahead cache, no HEAD per file).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads
from pyarrow.fs import FSSpecHandler, PyFileSystem

from ._modes import SQLError

__all__ = ["run_sql", "table_dataset"]


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
    problem when DataFusion refuses the query."""
    from datafusion import SessionContext

    ctx = SessionContext()
    ctx.register_dataset(name, dataset)
    try:
        return ctx.sql(sql).to_arrow_table()
    except Exception as e:  # DataFusion raises plain Exceptions with its own message
        message = str(e).strip()
        if "DataFusion error" in message or "error" in type(e).__name__.lower():
            raise SQLError(f"{message.splitlines()[0][:300]} (query on table {name})") from None
        raise
