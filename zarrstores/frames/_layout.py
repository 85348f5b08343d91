"""Where a table's objects live and how a table switches atomically to new data (docs/frames.md,
"Layout", gives the rules and what other readers see)::

    <root>/<bucket>/_bucket                               the bucket exists (may be empty)
    <root>/<bucket>/<name>/_frame.json                    {"generation": G, "schema": ...}
    <root>/<bucket>/<name>/part-<G>-<time>-<i>-<uid>.parquet  the rows (files of each put/append)

Readers take the files of generation ``G`` only. APPEND adds a uniquely named file of ``G``;
REPLACE writes a new generation's files, then rewrites the marker (one PUT: the atomic switch),
then deletes the old files; DELETE removes the marker first, then the files.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from dataclasses import dataclass

import pyarrow as pa

FRAME_MARKER = "_frame.json"
BUCKET_MARKER = "_bucket"
_FORMAT = "zarrstores.frames/1"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}")


def check_name(name: str, what: str = "table") -> str:
    """``name`` if it can be a table or bucket name (one path segment), else ``ValueError``."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"{what} name {name!r} is not valid: use letters, digits, '_', '.', '-' "
            "(not first), at most 200 characters"
        )
    return name


FIRST_GENERATION = "0" * 26
"""The generation of a table that an APPEND creates: every concurrent creator uses it."""


def new_generation() -> str:
    """A generation id that sorts after every earlier one (time first) and is unique."""
    return f"{time.time_ns():020d}{uuid.uuid4().hex[:6]}"


def part_names(generation: str, count: int) -> list[str]:
    """``count`` new data file names of ``generation`` for one write: they sort after earlier
    writes' (write time), in the order given (index), and are unique per writer."""
    stamp, uid = f"{time.time_ns():020d}", uuid.uuid4().hex[:8]
    return [f"part-{generation}-{stamp}-{i:06d}-{uid}.parquet" for i in range(count)]


def generation_of(file_name: str) -> str | None:
    """The generation of a data file name (``None`` for anything else)."""
    if file_name.startswith("part-") and file_name.endswith(".parquet"):
        return file_name[5:].split("-", 1)[0]
    return None


@dataclass(frozen=True)
class Marker:
    """The content of ``_frame.json``: current generation and the table's Arrow schema."""

    generation: str
    schema: pa.Schema

    def dumps(self) -> bytes:
        schema = base64.b64encode(self.schema.serialize().to_pybytes()).decode()
        body = {"format": _FORMAT, "generation": self.generation, "schema": schema}
        return json.dumps(body).encode()

    @classmethod
    def loads(cls, data: bytes, where: str) -> Marker:
        try:
            body = json.loads(data)
            schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(body["schema"])))
            return cls(str(body["generation"]), schema)
        except (ValueError, KeyError, TypeError, pa.ArrowException) as e:
            raise ValueError(f"{where} is not a frame marker ({e}): was it written by hand?") from e
