"""Request and answer bodies of the Swift client: large bodies sent without a copy, large
answers read into one buffer of their size, and a large answer cut short resumed where it
stopped instead of asked for again."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Mapping
from typing import Any

import aiohttp
import numpy as np

_FIRST_PIECE = 64 << 10  # a ViewBody's first piece, sent with the headers
_ONE_COPY_MIN = 4 << 20  # answers from this size on read into one buffer of their size
_HASH_IN_THREAD_MIN = 4 << 20  # MD5 of bodies from this size on in a worker thread
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/")


async def md5_hex(data: bytes | bytearray | memoryview) -> str:
    """The MD5 Swift checks a body against; a large body's in a worker thread (hashlib lets go
    of the GIL): 64 MiB take ~0.1 s, a stall of every other request of the event loop."""
    if len(data) < _HASH_IN_THREAD_MIN:
        return hashlib.md5(data, usedforsecurity=False).hexdigest()
    return await asyncio.to_thread(lambda: hashlib.md5(data, usedforsecurity=False).hexdigest())


class ViewBody(aiohttp.payload.Payload):
    """A request body sent from the caller's buffer without a copy. aiohttp joins the headers
    and the first piece of the body into one new ``bytes`` (Python < 3.12.9, 3.13.0-3.13.1): a
    64 MiB body given whole is a second copy (~0.05 s CPU) per request. Here the first piece
    is 64 KiB and the rest follows as a view (asyncio keeps views, not copies)."""

    _autoclose = True  # a view, no handle to close

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        super().__init__(view, content_type="application/octet-stream")
        self._size = len(view)

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return bytes(self._value).decode(encoding, errors)

    async def write(self, writer: Any) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(self, writer: Any, content_length: int | None) -> None:
        view = self._value if content_length is None else self._value[:content_length]
        await writer.write(view[:_FIRST_PIECE])
        if len(view) > _FIRST_PIECE:
            await writer.write(view[_FIRST_PIECE:])


class Progress:
    """A large answer to a GET as far as it came, kept across the attempts of one read: after
    a dropped connection the next attempt asks only for the rest (``Range`` from the first
    byte missing, ``If-Match`` the ETag of what came), so an object replaced in between is
    read anew, never spliced. Answers below 4 MiB are asked for again whole."""

    def __init__(self) -> None:
        self.body: bytearray | np.ndarray | None = None
        self.filled = 0
        self.offset = 0  # the object's byte at body[0]
        self.etag = ""
        self.status = 0  # and headers: those of the answer that began the body
        self.headers: Mapping[str, str] = {}

    def request_headers(self) -> dict[str, str]:
        """What the next attempt adds to its request: nothing, or the rest's range."""
        if self.body is None or not self.filled:
            return {}
        last = self.offset + len(self.body) - 1
        return {"Range": f"bytes={self.offset + self.filled}-{last}", "If-Match": self.etag}

    def continued_by(self, resp: aiohttp.ClientResponse) -> bool:
        """Whether ``resp`` is the rest of the body begun (else it is read as a new one)."""
        if self.body is None or not self.filled or resp.status != 206:
            return False
        found = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
        return (
            found is not None
            and int(found[1]) == self.offset + self.filled
            and int(found[2]) == self.offset + len(self.body) - 1
            and resp.content_length == len(self.body) - self.filled
            and resp.headers.get("ETag") == self.etag
        )

    def forget(self) -> None:
        """Nothing to resume: the next attempt asks for the whole answer."""
        self.body, self.filled = None, 0

    def begin(self, resp: aiohttp.ClientResponse, body: bytearray | np.ndarray) -> None:
        """Keep ``body`` (the buffer of ``resp``'s answer) if a cut could be resumed."""
        self.forget()
        etag = resp.headers.get("ETag")
        found = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
        if resp.method != "GET" or not etag or (resp.status == 206) != bool(found):
            return
        if resp.status in (200, 206):
            self.body, self.etag = body, etag
            self.offset = int(found[1]) if found else 0
            self.status, self.headers = resp.status, resp.headers


async def read_body(
    resp: aiohttp.ClientResponse, array: bool = False, progress: Progress | None = None
) -> bytes | bytearray | np.ndarray:
    """The whole answer. From 4 MiB on with a known length it goes straight into one buffer of
    its size (aiohttp's ``read()`` joins the pieces into a second copy); below, ``read()``
    takes ~20% less CPU (docs/performance.md). The buffer is a bytearray, or with ``array`` a
    numpy array: numpy gets 2 MiB pages (transparent huge pages) where a bytearray is
    zero-filled 4 KiB page by page, ~0.03 s more CPU for 64 MiB. ``progress``: what came of
    a large answer stays there when the connection drops, and an answer that continues it
    (``Progress.request_headers``) fills in the rest; a success that does not (another
    version) is left unread (b"") and ``progress`` emptied, as after a 412: the caller asks
    for all of it again."""
    size = resp.content_length
    if progress is not None and progress.filled:  # the answer to a request for the rest
        if not progress.continued_by(resp):
            if resp.status < 300 or resp.status == 412:  # another version, or all of it
                progress.forget()
                return b"" if resp.status < 300 else await resp.read()
            return await resp.read()  # (an error: the next attempt asks for the rest again)
        body, start = progress.body, progress.filled
    elif resp.method == "HEAD" or size is None or size < _ONE_COPY_MIN:
        return await resp.read()
    else:
        body, start = np.empty(size, dtype=np.uint8) if array else bytearray(size), 0
        if progress is not None:
            progress.begin(resp, body)
    assert body is not None and size is not None
    end = start + size
    view = memoryview(body)
    filled = start
    try:
        async for piece in resp.content.iter_any():
            if filled + len(piece) > end:
                if progress is not None:
                    progress.forget()
                raise aiohttp.ClientPayloadError(f"answer longer than its Content-Length {size}")
            view[filled : filled + len(piece)] = piece
            filled += len(piece)
    finally:
        view.release()
        if progress is not None and progress.body is body:
            progress.filled = filled
    if filled != end:
        raise aiohttp.ClientPayloadError(f"answer ended after {filled - start} of {size} bytes")
    return body
