"""Static Large Objects: an object larger than one PUT may be, written as segments in
``<container>_segments`` and a manifest that Swift checks against them."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import AsyncIterable, AsyncIterator
from typing import TYPE_CHECKING

from ._bodies import md5_hex
from ._errors import SwiftError
from ._urls import quote_name

if TYPE_CHECKING:
    from ._client import SwiftClient

_SEGMENT_PARALLELISM = 4  # segments of one SLO uploaded at once (each up to segment_size)


class SloWriter:
    """Writes one Static Large Object: segments (all of ``segment_size`` but the last) go to
    ``<container>_segments``, ``commit()`` puts the manifest, ``abort()`` removes segments.
    They come from one buffer (``write``, each retried) or streamed (``write_all``: a streamed
    segment cannot be retried, so no more than two pieces of it are ever held)."""

    def __init__(
        self,
        client: SwiftClient,
        container: str,
        name: str,
        segment_size: int,
        *,
        exclusive: bool = False,
    ) -> None:
        self.client = client
        self.container = container
        self.name = name
        self.segment_size = segment_size
        self.exclusive = exclusive
        self.segment_container = f"{container}_segments"
        self._stem = f"{name}/slo/{time.time():.6f}/{self.segment_size}"
        self._segments: dict[int, tuple[str, str, int]] = {}  # index -> (name, etag, size)

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Upload ``data`` in segments, a few at once, each verified by its MD5, and commit; on
        any failure delete the segments written."""
        view = memoryview(data).cast("B")
        step = self.segment_size
        sem = asyncio.Semaphore(_SEGMENT_PARALLELISM)

        async def put_segment(index: int) -> None:
            piece = view[index * step : (index + 1) * step]
            async with sem:
                etag = await md5_hex(piece)
                name = f"{self._stem}/{index:08d}"
                await self.client._put(self.segment_container, name, {"ETag": etag}, piece)
            self._segments[index] = (name, etag, len(piece))

        try:
            await self.client.ensure_container(self.segment_container)  # once, not per segment
            await asyncio.gather(*map(put_segment, range(-(-len(view) // step))))
            await self.commit()
        except BaseException:
            await self.abort()
            raise

    async def write_all(self, pieces: AsyncIterable[bytes | bytearray]) -> None:
        """Stream ``pieces`` into segments, one PUT each, and commit; on any failure delete the
        segments written. Only the piece being sent and the next one (read meanwhile) are held."""
        source = aiter(pieces)
        following = asyncio.ensure_future(anext(source, None))
        view = memoryview(b"")  # what is left of the piece being sent
        failure: BaseException | None = None  # of ``pieces``, raised as it is, not as aiohttp's

        async def more() -> bool:  # whether data remains: ``view`` then holds the next of it
            nonlocal view, following, failure
            while not view:
                try:
                    piece = await following
                except BaseException as e:
                    failure = e
                    raise
                if piece is None:
                    return False
                following = asyncio.ensure_future(anext(source, None))
                view = memoryview(piece).cast("B")
            return True

        async def segment() -> AsyncIterator[memoryview]:
            nonlocal view, filled
            while filled < self.segment_size and await more():
                piece, view = view[: self.segment_size - filled], view[self.segment_size - filled :]
                md5.update(piece)
                filled += len(piece)
                yield piece

        try:
            # The container exists before streaming starts: a 404 retry would need the body.
            await self.client.create_container(self.segment_container)
            while await more():
                index = len(self._segments)
                name = f"{self._stem}/{index:08d}"
                md5, filled = hashlib.md5(usedforsecurity=False), 0  # of the segment being sent
                try:
                    reply = await self.client._put(
                        self.segment_container, name, {}, segment(), retry=False
                    )
                except Exception:
                    if failure is not None:  # the request failed because the pieces did
                        raise failure from None
                    raise
                etag = reply.headers.get("Etag", "").strip('"')
                if etag != md5.hexdigest():
                    raise SwiftError(
                        f"segment {index} of swift://{self.container}/{self.name} arrived "
                        f"corrupted (MD5 {md5.hexdigest()}, Swift has {etag})"
                    )
                self._segments[index] = (name, etag, filled)
            await self.commit()
        except BaseException:
            following.cancel()
            await self.abort()
            raise

    async def commit(self) -> None:
        """Put the manifest (Swift checks every segment); the segments of the SLO this one
        replaces, if any, are deleted afterwards."""
        manifest = [
            {"path": quote_name(self.segment_container, name), "etag": etag, "size_bytes": size}
            for name, etag, size in (self._segments[i] for i in sorted(self._segments))
        ]
        replaced = await self.client.slo_segments(self.container, self.name)
        own = {name for name, _, _ in self._segments.values()}
        replaced = {c: [n for n in names if n not in own] for c, names in replaced.items()}
        await self.client._put(
            self.container,
            self.name,
            {"Content-Type": "application/json"},
            json.dumps(manifest).encode(),
            query="?multipart-manifest=put",
            exclusive=self.exclusive,
        )
        for container, names in replaced.items():
            await self.client.delete_known(container, dict.fromkeys(names, False))

    async def abort(self) -> None:
        """Delete the segments written so far (best effort)."""
        names = dict.fromkeys((name for name, _, _ in self._segments.values()), False)
        with contextlib.suppress(Exception):
            await self.client.delete_known(self.segment_container, names)
