"""Dataframes on Swift or S3 as Parquet: ``FrameStore`` (library) and ``FrameServer`` (an
Arrow Flight server speaking the Shoots protocol). See docs/frames.md."""

from __future__ import annotations

import importlib
from typing import Any

from ._modes import BucketDeleteMode, BucketNotEmptyError, PutMode, SQLError

# pyarrow, fsspec and Flight load only when a store or server is made.
_LAZY = {"FrameStore": ".store", "FrameServer": ".server"}
__all__ = ["BucketDeleteMode", "BucketNotEmptyError", "PutMode", "SQLError", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
