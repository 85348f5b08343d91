"""Dataframes on Swift or S3 as Parquet: ``FrameStore`` (library) and ``FrameServer`` (an
Arrow Flight server speaking the Shoots protocol). See docs/frames.md."""

from __future__ import annotations

from typing import Any

from ._modes import BucketDeleteMode, BucketNotEmptyError, PutMode, SQLError

__all__ = [
    "BucketDeleteMode",
    "BucketNotEmptyError",
    "FrameServer",
    "FrameStore",
    "PutMode",
    "SQLError",
]


def __getattr__(name: str) -> Any:
    # pyarrow, fsspec and Flight load only when a store or server is made.
    if name == "FrameStore":
        from .store import FrameStore

        return FrameStore
    if name == "FrameServer":
        from .server import FrameServer

        return FrameServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
