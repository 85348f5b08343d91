"""Tables in and out: pandas (default), polars or Arrow; Parquet bytes for one data file."""

from __future__ import annotations

from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

Output = Literal["pandas", "polars", "arrow"]

_ROW_GROUP_BYTES = 8 << 20  # row groups of ~8 MiB of Arrow data: fine-grained predicate pruning
_FILE_BYTES = 64 << 20  # one put writes files of at most ~64 MiB of Arrow data


def from_frame(frame: Any) -> pa.Table:
    """A pandas or polars DataFrame, or an Arrow table/record batch reader, as an Arrow table."""
    if isinstance(frame, pa.Table):
        return frame
    if isinstance(frame, pa.RecordBatchReader):
        return frame.read_all()
    if type(frame).__module__.startswith("polars"):
        return frame.to_arrow()
    if type(frame).__module__.startswith("pandas"):
        try:
            return pa.Table.from_pandas(frame)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
            # e.g. a column of ints and strings: Arrow names the column, then why
            said = [" ".join(str(a).split()) for a in e.args]
            raise TypeError(
                f"the DataFrame cannot be stored as Parquet: {said[-1]}; convert that column to "
                "one type Parquet stores, e.g. df[col] = df[col].astype(str)"
                + (f"\n{said[0]}" if len(said) > 1 else "")
            ) from None
    raise TypeError(f"expected a pandas or polars DataFrame or an Arrow table, not {type(frame)}")


def output(table: pa.Table, kind: Output) -> Any:
    """``table`` as the caller asked: a pandas DataFrame, a polars DataFrame or itself."""
    if kind == "pandas":
        return table.to_pandas()
    if kind == "arrow":
        return table
    if kind == "polars":
        import polars as pl

        return pl.from_arrow(table)
    raise ValueError(f"output is {kind!r}, must be 'pandas', 'polars' or 'arrow'")


def split_rows(table: pa.Table) -> list[pa.Table]:
    """``table`` in slices of at most ~64 MiB (one data file each; at least one slice)."""
    rows = _rows_per(table, _FILE_BYTES)
    return [table.slice(i, rows) for i in range(0, table.num_rows, rows)] or [table]


def parquet_bytes(table: pa.Table) -> bytes:
    """``table`` as one Parquet file, row groups of ~8 MiB with statistics. Floating-point
    columns are not dictionary-encoded (their values rarely repeat: it costs time and space)."""
    dictionary = [f.name for f in table.schema if not pa.types.is_floating(f.type)]
    sink = pa.BufferOutputStream()
    pq.write_table(
        table, sink, row_group_size=_rows_per(table, _ROW_GROUP_BYTES), use_dictionary=dictionary
    )
    return sink.getvalue().to_pybytes()


def _rows_per(table: pa.Table, target: int) -> int:
    per_row = table.nbytes / table.num_rows if table.num_rows else 1
    return max(1024, int(target / max(per_row, 1)))
