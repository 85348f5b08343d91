"""Time resampling with pandas, as Shoots does it: index by the time column, resample by
``rule`` and aggregate with one of pandas' resampler methods."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

AGGREGATIONS = frozenset(
    "count first last max mean median min nunique prod sem size std sum var".split()  # noqa: SIM905
)


def resample_frame(frame: pd.DataFrame, rule: str, time_col: str, aggregation: str) -> pa.Table:
    """``frame`` resampled by ``rule`` on ``time_col`` with ``aggregation`` (a pandas
    resampler method such as ``"mean"``), as an Arrow table indexed by time."""
    if aggregation not in AGGREGATIONS:
        raise ValueError(
            f"aggregation_func {aggregation!r} is not one of {', '.join(sorted(AGGREGATIONS))}"
        )
    if time_col not in frame.columns:
        raise ValueError(f"time_col {time_col!r} is not a column: {list(frame.columns)}")
    try:
        resampler = frame.set_index(time_col).resample(rule)
        result = getattr(resampler, aggregation)()
    except (TypeError, ValueError) as e:
        raise ValueError(f"cannot resample by {rule!r} on {time_col!r}: {e}") from None
    if isinstance(result, pd.Series):
        result = result.to_frame(aggregation)
    return pa.Table.from_pandas(result)
