"""Modes and errors of the frame store, with the names and values Shoots clients use."""

from __future__ import annotations

from enum import Enum

__all__ = ["BucketDeleteMode", "BucketNotEmptyError", "PutMode", "SQLError"]


class PutMode(Enum):
    """What ``put`` does when the table exists: replace it, append to it, or raise
    ``FileExistsError`` (the values are Shoots' wire values)."""

    REPLACE = "replace"
    APPEND = "append"
    ERROR = "error"


class BucketDeleteMode(Enum):
    """What ``delete_bucket`` does with a bucket that holds tables: raise
    ``BucketNotEmptyError`` or delete them too."""

    DELETE_CONTENTS = "delete"
    ERROR = "error"


class BucketNotEmptyError(OSError):
    """``delete_bucket`` with ``BucketDeleteMode.ERROR`` on a bucket that holds tables."""


class SQLError(ValueError):
    """DataFusion could not run the SQL (the message says why: parse error, unknown column)."""


def put_mode(mode: PutMode | str) -> PutMode:
    """``mode`` as a ``PutMode`` (also from its value, ``"append"``, as on the wire)."""
    if isinstance(mode, PutMode):
        return mode
    try:
        return PutMode(getattr(mode, "value", mode))
    except ValueError:
        allowed = [m.value for m in PutMode]
        raise ValueError(f"put mode is {mode}, must be one of {allowed}") from None


def bucket_delete_mode(mode: BucketDeleteMode | str) -> BucketDeleteMode:
    """``mode`` as a ``BucketDeleteMode`` (also from its value, ``"delete"``)."""
    if isinstance(mode, BucketDeleteMode):
        return mode
    try:
        return BucketDeleteMode(getattr(mode, "value", mode))
    except ValueError:
        allowed = [m.value for m in BucketDeleteMode]
        raise ValueError(f"bucket delete mode is {mode}, must be one of {allowed}") from None
