"""``FrameStore``: named dataframes as Parquet on Swift or S3, with SQL through DataFusion."""

from __future__ import annotations

import builtins
import contextlib
import re
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from ..auth.errors import shorten
from . import _convert
from ._convert import Output, from_frame, parquet_bytes, split_rows
from ._layout import (
    BUCKET_MARKER,
    FIRST_GENERATION,
    FRAME_MARKER,
    Marker,
    check_name,
    generation_of,
    new_generation,
    part_names,
)
from ._modes import (
    BucketDeleteMode,
    BucketNotEmptyError,
    PutMode,
    member_of,
    put_mode,
)
from ._resample import resample_frame
from ._sql import run_sql, table_dataset

__all__ = ["FrameStore"]

_APPEND_ATTEMPTS = 5
_READ_ATTEMPTS = 5
_WRITERS = 4  # data files encoded and uploaded at once


class FrameStore:
    """Dataframes by name under ``url`` (``swift://container/prefix`` or
    ``minio://bucket/prefix``), optionally grouped in buckets, as Shoots keeps them.
    ``storage_options`` go to the fsspec filesystem (auth as for the zarr stores); the layout
    and its atomic switches are described in :mod:`zarrstores.frames._layout`."""

    def __init__(self, url: str, **storage_options: Any) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(url, **storage_options)
        self.root = self.root.rstrip("/")

    def __repr__(self) -> str:
        return f"FrameStore({self.fs.unstrip_protocol(self.root)})"

    # -- public API ----------------------------------------------------------------------------
    def put(
        self,
        name: str,
        frame: Any,
        mode: PutMode | str = PutMode.ERROR,
        bucket: str | None = None,
    ) -> None:
        """Store ``frame`` (pandas, polars or Arrow) as table ``name``. ``mode``: ``ERROR``
        raises ``FileExistsError`` if the table exists, ``APPEND`` adds the rows (the schema
        must match), ``REPLACE`` swaps the whole table atomically."""
        self._write(name, from_frame(frame), put_mode(mode), bucket)

    def get(
        self,
        name: str,
        sql: str | None = None,
        bucket: str | None = None,
        *,
        output: Output = "pandas",
    ) -> Any:
        """Table ``name`` whole, or the result of ``sql`` on it (the table is called ``name``
        in the query), as pandas (default), ``output="polars"`` or ``"arrow"``. Raises
        ``FileNotFoundError`` if there is no such table, ``SQLError`` if DataFusion refuses."""
        return _convert.output(self._query(name, sql, bucket), output)

    def list(self, bucket: str | None = None, regex: str | None = None) -> builtins.list[dict]:
        """``[{"name": ..., "schema": pyarrow.Schema}]`` of the tables in ``bucket`` (or
        outside buckets), names matching ``regex`` (``re.search``) if given.
        ``FileNotFoundError`` if the bucket does not exist."""
        if bucket is not None and not self._bucket_exists(bucket):
            raise FileNotFoundError(f"No such bucket {bucket}")
        pattern = re.compile(regex or "")  # a bad regex is refused even when there is no table
        names = [name for name in self._table_names(bucket) if pattern.search(name)]
        markers = {name: self._marker(self._dir(name, bucket)) for name in names}
        return [{"name": name, "schema": m.schema} for name, m in markers.items() if m is not None]

    def delete(self, name: str, bucket: str | None = None) -> None:
        """Delete table ``name`` (``FileNotFoundError`` if there is none). It disappears at
        once for readers of this store; its files are deleted after."""
        directory = self._dir(name, bucket)
        if self._marker(directory) is None:
            self._remove(self._files(directory))  # what a delete that failed midway left
            raise FileNotFoundError(f"Dataframe {name} not found")
        self.fs.rm_file(f"{directory}/{FRAME_MARKER}")
        self._remove(self._files(directory))

    def buckets(self) -> builtins.list[str]:
        """Names of the buckets (created by the first ``put`` with ``bucket=``)."""
        return self._holding(self.root, BUCKET_MARKER)

    def delete_bucket(
        self, name: str, mode: BucketDeleteMode | str = BucketDeleteMode.ERROR
    ) -> None:
        """Delete bucket ``name``: ``FileNotFoundError`` if there is none,
        ``BucketNotEmptyError`` if it holds anything and ``mode`` is ``ERROR``;
        ``DELETE_CONTENTS`` deletes its tables (each atomically) and then the bucket."""
        mode = member_of(BucketDeleteMode, mode, "bucket delete mode")
        if not self._bucket_exists(name):
            raise FileNotFoundError(f"Bucket {name} not found")
        base = self._base(name)
        marker = f"{base}/{BUCKET_MARKER}"
        contents = [p for p in self._find(base) if p != marker]
        if contents and mode is BucketDeleteMode.ERROR:
            raise BucketNotEmptyError(f"Bucket Not Empty: {name}")
        for table in self._table_names(name):
            self.delete(table, name)
        self._remove([p for p in self._find(base) if p != marker])
        self.fs.rm_file(marker)

    def resample(
        self,
        source: str,
        target: str,
        *,
        sql: str | None = None,
        rule: str | None = None,
        time_col: str | None = None,
        aggregation_func: str | None = None,
        mode: PutMode | str = PutMode.APPEND,
        bucket: str | None = None,
        source_bucket: str | None = None,
        target_bucket: str | None = None,
    ) -> dict[str, int]:
        """Write a table derived from ``source`` to ``target`` with ``mode``: by ``sql`` (a query
        on ``source``; returns ``{"target_rows": n}``) or a pandas time resample by ``rule``
        (``"10s"``), ``time_col`` and ``aggregation_func`` (``"mean"``, ...; returns
        ``{"source_rows": m, "target_rows": n}``). ``bucket``: default of the other two."""
        mode = put_mode(mode)
        if sql is None and (rule is None or time_col is None or aggregation_func is None):
            raise ValueError("resample needs sql=, or rule=, time_col= and aggregation_func=")
        source_bucket = source_bucket if source_bucket is not None else bucket
        table = self._query(source, sql, source_bucket, missing=f"Dataframe {source} not found")
        counts: dict[str, int] = {}
        if sql is None:
            counts["source_rows"] = table.num_rows
            table = resample_frame(table.to_pandas(), rule, time_col, aggregation_func)
        self._write(target, table, mode, target_bucket if target_bucket is not None else bucket)
        return counts | {"target_rows": table.num_rows}

    def url(self, name: str, bucket: str | None = None) -> str:
        """The URL of table ``name``'s prefix, for ``pd.read_parquet`` and other readers."""
        return f"{self.fs.unstrip_protocol(self._dir(name, bucket))}/"

    # -- reading -------------------------------------------------------------------------------
    def _query(
        self, name: str, sql: str | None, bucket: str | None, *, missing: str | None = None
    ) -> pa.Table:
        directory = self._dir(name, bucket)
        marker = self._marker(directory)
        for _ in range(_READ_ATTEMPTS):
            if marker is None:
                where = f" in bucket {bucket}" if bucket else ""
                raise FileNotFoundError(missing or f"dataframe {name}{where} not found")
            try:
                return self._read(name, directory, marker, sql)
            except Exception:
                # A REPLACE or DELETE may have switched the table and removed the files being
                # read: then read the table as it is now; otherwise the error stands.
                now = self._marker(directory)
                if now is not None and now.generation == marker.generation:
                    raise
                marker = now
        raise OSError(f"{directory}: the table kept being replaced while reading it")

    def _read(self, name: str, directory: str, marker: Marker, sql: str | None) -> pa.Table:
        files = self._files(directory, marker.generation)
        if sql is not None:
            return run_sql(name, table_dataset(self.fs, files, marker.schema), sql)
        blobs = self.fs.cat(builtins.list(files), on_error="raise")
        tables = [pq.read_table(pa.BufferReader(blobs[path])) for path in files]
        if not tables:
            return marker.schema.empty_table()
        return pa.concat_tables(tables, promote_options="permissive")

    def _files(self, directory: str, generation: str | None = None) -> dict[str, int]:
        """The data files of ``generation`` (all for None), in write order, with their sizes."""
        try:
            entries = self.fs.ls(directory, detail=True, refresh=True)
        except FileNotFoundError:
            return {}
        files = {}
        for e in sorted(entries, key=lambda e: e["name"]):
            found = generation_of(e["name"].rsplit("/", 1)[-1])
            if found is not None and generation in (None, found):
                files[e["name"]] = int(e["size"])
        return files

    def _marker(self, directory: str) -> Marker | None:
        path = f"{directory}/{FRAME_MARKER}"
        try:
            data = self.fs.cat_file(path)
        except FileNotFoundError:
            return None
        return Marker.loads(data, self.fs.unstrip_protocol(path))

    # -- writing -------------------------------------------------------------------------------
    def _write(self, name: str, table: pa.Table, mode: PutMode, bucket: str | None) -> None:
        directory = self._dir(name, bucket)
        marker = self._marker(directory)
        if marker is not None and mode is PutMode.ERROR:
            raise FileExistsError(f"Dataframe {name} Exists")
        if bucket is not None:
            self._ensure_bucket(bucket)
        elif marker is None and self.fs.exists(f"{directory}/{BUCKET_MARKER}"):
            raise FileExistsError(f"{name} is a bucket: a table outside buckets needs another name")
        if marker is None:
            first = FIRST_GENERATION if mode is PutMode.APPEND else new_generation()
            marker = self._create(directory, table, first)
            if marker is None:
                return
            if mode is PutMode.ERROR:  # another writer created it first
                raise FileExistsError(f"Dataframe {name} Exists")
        if mode is PutMode.APPEND:
            self._append(directory, marker, table)
        else:
            self._replace(directory, marker, table)

    def _create(self, directory: str, table: pa.Table, generation: str) -> Marker | None:
        """Create the table with ``table``'s rows; ``None``, or the marker of the table that
        another writer created meanwhile. The marker is written if there is none and read back
        (on Swift after twice as long as writing it took: a newer PUT may land later and stay):
        the writer whose marker stays wins, the others' rows go to the winner's table. Appenders
        all create ``FIRST_GENERATION``, so their rows are in whichever marker stays."""
        marker = Marker(generation, table.schema)
        split = generation != FIRST_GENERATION
        written = self._put_files(directory, generation, table, split=split)
        started = time.monotonic()
        try:
            self.fs.pipe_file(f"{directory}/{FRAME_MARKER}", marker.dumps(), mode="create")
        except OSError:  # FileExistsError, or S3's PreconditionFailed: see who won
            winner = self._marker(directory)
            if winner is None:
                self._remove(written)
                raise
        else:
            if "swift" in self.fs.protocol:
                time.sleep(max(0.05, 2 * (time.monotonic() - started)))
            winner = self._marker(directory)
        if winner is None or winner.generation == generation:
            return None
        self._remove(written)
        return winner

    def _append(self, directory: str, marker: Marker, table: pa.Table) -> None:
        _check_schema(table.schema, marker.schema, directory)
        for _ in range(_APPEND_ATTEMPTS):
            written = self._put_files(directory, marker.generation, table, split=False)
            now = self._marker(directory)
            if now is not None and now.generation == marker.generation:
                return
            # A REPLACE or DELETE switched the table meanwhile: this append comes after it.
            self._remove(written)
            if now is None:
                now = self._create(directory, table, FIRST_GENERATION)
                if now is None:
                    return
                _check_schema(table.schema, now.schema, directory)
            marker = now
        raise OSError(f"{directory}: the table kept being replaced, append given up")

    def _replace(self, directory: str, old: Marker, table: pa.Table) -> None:
        generation = new_generation()
        self._put_files(directory, generation, table)
        self.fs.pipe_file(f"{directory}/{FRAME_MARKER}", Marker(generation, table.schema).dumps())
        stale = [
            path
            for path in self._files(directory)
            if generation_of(path.rsplit("/", 1)[-1]) <= old.generation  # type: ignore[operator]
        ]
        self._remove(stale)

    def _put_files(
        self, directory: str, generation: str, table: pa.Table, *, split: bool = True
    ) -> builtins.list[str]:
        """Write ``table`` as data files of ``generation``: one file (an append appears at
        once, whole) or, with ``split``, files of ~64 MiB written a few at a time (a new
        generation is not read before the switch). On failure, what was written is removed."""
        pieces = split_rows(table) if split else [table]
        paths = [f"{directory}/{name}" for name in part_names(generation, len(pieces))]

        def write(path: str, piece: pa.Table) -> None:
            self.fs.pipe_file(path, parquet_bytes(piece))

        try:
            # Encoding (pyarrow, outside the GIL) and uploads overlap.
            with ThreadPoolExecutor(_WRITERS) as pool:
                builtins.list(pool.map(write, paths, pieces))  # raises what a write raised
        except BaseException:
            with contextlib.suppress(OSError):
                self._remove([p for p in paths if self.fs.exists(p)])
            raise
        return paths

    def _ensure_bucket(self, bucket: str) -> None:
        if not self._bucket_exists(bucket):
            if self.fs.exists(f"{self.root}/{bucket}/{FRAME_MARKER}"):
                raise FileExistsError(f"{bucket} is a table outside buckets: use another name")
            self.fs.pipe_file(f"{self._base(bucket)}/{BUCKET_MARKER}", b"")

    # -- listing -------------------------------------------------------------------------------
    def _base(self, bucket: str | None) -> str:
        return self.root if bucket is None else f"{self.root}/{check_name(bucket, 'bucket')}"

    def _dir(self, name: str, bucket: str | None) -> str:
        return f"{self._base(bucket)}/{check_name(name)}"

    def _bucket_exists(self, bucket: str) -> bool:
        return self.fs.exists(f"{self._base(bucket)}/{BUCKET_MARKER}")

    def _table_names(self, bucket: str | None) -> builtins.list[str]:
        return self._holding(self._base(bucket), FRAME_MARKER)

    def _holding(self, base: str, marker: str) -> builtins.list[str]:
        """The names of the directories directly under ``base`` that hold ``marker``."""
        found = self._find(base, maxdepth=2)
        return sorted(path.split("/")[-2] for path in found if path.endswith(f"/{marker}"))

    def _find(self, base: str, maxdepth: int | None = None) -> builtins.list[str]:
        self.fs.invalidate_cache(base)
        try:
            return builtins.list(self.fs.find(base, maxdepth=maxdepth))
        except FileNotFoundError:
            return []

    def _remove(self, paths: Iterable[str]) -> None:
        if paths:
            self.fs.rm(builtins.list(paths))


def _check_schema(new: pa.Schema, stored: pa.Schema, directory: str) -> None:
    if new.remove_metadata().equals(stored.remove_metadata()):
        return
    ours, theirs = ({f"{f.name}: {f.type}" for f in schema} for schema in (new, stored))
    if ours == theirs:
        diff = "the same, in another order: " + ", ".join(stored.names)
    else:
        only = [", ".join(sorted(s)) or "none" for s in (ours - theirs, theirs - ours)]
        diff = f"only in the new: {only[0]}; only stored: {only[1]}"
    raise ValueError(
        f"cannot append to {directory}: columns differ from the stored table "
        f"({shorten(diff, 100)}); use mode=PutMode.REPLACE to store the new columns"
    )
