"""Modes and errors of the frame store, with the names and values Shoots clients use."""

from __future__ import annotations

from enum import Enum
from typing import Any


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


def member_of(kind: type[Enum], mode: Enum | str, what: str) -> Any:
    """``mode`` as a member of ``kind``, also from its value (``"append"``, as on the wire) or
    from a member of a same-valued enum (Shoots' own)."""
    try:
        return kind(getattr(mode, "value", mode))
    except ValueError:
        allowed = [m.value for m in kind]
        raise ValueError(f"{what} is {mode}, must be one of {allowed}") from None


def put_mode(mode: PutMode | str) -> PutMode:
    return member_of(PutMode, mode, "put mode")
