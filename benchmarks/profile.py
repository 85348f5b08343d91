"""``python -m benchmarks.profile swift|s3 [--op write|read] [--store ours|fs|alt]``: profile
one contender's array round with pyinstrument, for finding where a missed goal's time goes.

The round runs on an event loop in the main thread (zarr's async API), so the profile holds
everything that runs in Python; time spent in other threads (obstore's Rust runtime,
``asyncio.to_thread``) shows as waiting. Prints the text profile and writes the HTML one to
``$TMPDIR/zarrstores-profile-<backend>-<store>-<op>.html``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from zarr.api.asynchronous import open_array
from zarr.core.array import create_array

from ._arrays import CHUNK_BYTES, zarr_config
from ._servers import BenchServers


def _store(servers: BenchServers, backend: str, which: str) -> Any:
    from zarr.storage import FsspecStore

    if backend == "swift":
        from zarrswift import SwiftStore as ZarrSwiftStore

        from zarrstores.swift import SwiftStore

        from ._raw import LoopRunner, RawSwift

        container = "profile"
        runner, raw = LoopRunner(), RawSwift(servers.swift_url(), servers.swift_token)
        runner.run(raw.create_container(container))
        runner.run(raw.close())
        runner.close()
        opts = servers.swift_options()
        if which == "fs":
            return FsspecStore.from_url(f"swift://{container}", storage_options=opts)
        if which == "alt":
            return ZarrSwiftStore(container, storage_options=dict(opts))
        return SwiftStore(container, storage_options=opts)
    from zarrstores.minio import MinioStore

    from .s3 import at, s3fs_options, static_keys

    bucket = servers.new_bucket()
    if which == "fs":
        options = {"endpoint_url": servers.s3.endpoint, "token": servers.oidc_token()}
        return FsspecStore.from_url(f"minio://{bucket}", storage_options=options)
    if which == "alt":
        options = s3fs_options(static_keys(servers), *at(servers))
        return FsspecStore.from_url(f"s3://{bucket}", storage_options=options)
    return MinioStore(bucket, endpoint_url=servers.s3.endpoint, token=servers.oidc_token())


async def _rounds(store: Any, op: str, chunks: int, rounds: int, profiler: Any) -> None:
    items = CHUNK_BYTES // 4
    data = np.random.default_rng(1).random(chunks * items, dtype=np.float32)
    for i in range(rounds + 1):  # the first round warms up, unprofiled
        arr = await create_array(
            store, name=f"p{i}", shape=data.shape, chunks=(items,), dtype="f4", compressors=None
        )
        if op == "write" and i:
            profiler.start()
        await arr.setitem(slice(None), data)
        if op == "write" and i:
            profiler.stop()
        arr = await open_array(store=store, path=f"p{i}", mode="r")
        if op == "read" and i:
            profiler.start()
        await arr.getitem(slice(None))
        if op == "read" and i:
            profiler.stop()


def main() -> None:
    from pyinstrument import Profiler

    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    parser.add_argument("backend", choices=("swift", "s3"))
    parser.add_argument("--op", choices=("write", "read"), default="read")
    parser.add_argument(
        "--store",
        choices=("ours", "fs", "alt"),
        default="ours",
        help="ours: SwiftStore/MinioStore; fs: swift:// or minio://; alt: zarr-swiftstore/s3fs",
    )
    parser.add_argument("--chunks", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    profiler = Profiler(interval=0.0005, async_mode="disabled")
    with BenchServers() as servers, zarr_config():
        store = _store(servers, args.backend, args.store)
        asyncio.run(_rounds(store, args.op, args.chunks, args.rounds, profiler))
    out = (
        Path(tempfile.gettempdir())
        / f"zarrstores-profile-{args.backend}-{args.store}-{args.op}.html"
    )
    out.write_text(profiler.output_html())
    print(profiler.output_text(unicode=True, show_all=False))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
