"""``python -m benchmarks.checksum [--mib N] [--chunks N] [--reps N]``: what our write-integrity
checks cost, by writing the same arrays with them and with them switched off (here only).

- Swift: SwiftStore sends each body's MD5 as ``ETag`` (Swift refuses a body that arrives
  different); the bare aiohttp client and swiftspec send none. At loopback, ``--chunks`` chunks
  of 64 KiB, as in ``benchmarks.run``.
- S3: MinioStore sends ``x-amz-checksum-sha256`` (SeaweedFS refuses a corrupted body only
  then); zarr's ``ObjectStore`` on obstore sends none. Through the +30 ms delay proxy, an
  array of ``--mib`` 1 MiB chunks, as in ``benchmarks.latency``.

Contenders interleaved, the order rotated each repetition; median seconds and the ratio to
the unchecked store. Prints a table; nothing is written to disk.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import numpy as np
import zarr

from ._proxy import DelayProxy
from ._raw import LoopRunner, RawSwift
from ._servers import BenchServers
from .latency import CHUNK_ITEMS, RTT
from .s3 import obstore_store, static_keys


@contextlib.contextmanager
def unchecked() -> Iterator[None]:
    """Writes without the MD5 ``ETag`` (Swift) and the SHA-256 checksum (S3)."""
    from zarrstores.minio._client import S3Client
    from zarrstores.swift import _client as swift

    new_store, put = S3Client._new_store, swift.SwiftClient._put

    def store(self: Any, bucket: str, creds: Any) -> Any:
        made = new_store(self, bucket, creds)
        config = {k: v for k, v in made.config.items() if k not in ("checksum_algorithm", "bucket")}
        options = {"client_options": made.client_options, "retry_config": made.retry_config}
        return type(made)(bucket, config=config, **options)

    async def no_md5(data: Any) -> None:
        return None

    def put_without(
        self: Any, container: str, name: str, headers: dict[str, Any], *a: Any, **k: Any
    ) -> Any:
        return put(self, container, name, {h: v for h, v in headers.items() if v}, *a, **k)

    with (
        mock.patch.object(S3Client, "_new_store", store),
        mock.patch.object(swift, "md5_hex", no_md5),
        mock.patch.object(swift.SwiftClient, "_put", put_without),
    ):
        yield


def _rounds(ways: dict[str, Callable[[], None]], reps: int) -> dict[str, float]:
    names, times = list(ways), {n: [] for n in ways}
    for rep in range(reps + 1):  # the first warms up
        turn = rep % len(names)
        for name in names[turn:] + names[:turn]:
            t0 = time.perf_counter()
            ways[name]()
            if rep:
                times[name].append(time.perf_counter() - t0)
    return {n: statistics.median(t) for n, t in times.items()}


def _writer(
    store: Any, items: int, chunk: int, data: np.ndarray, checked: bool
) -> Callable[[], None]:
    array = zarr.create_array(
        store,
        name="a",
        shape=(items,),
        chunks=(chunk,),
        dtype="float32",
        compressors=None,
        fill_value=0,
        overwrite=True,
    )

    def write() -> None:
        with contextlib.nullcontext() if checked else unchecked():
            array[:] = data

    return write


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.checksum", description=__doc__)
    parser.add_argument("--mib", type=int, default=512, help="S3 array size in MiB (default 512)")
    parser.add_argument("--chunks", type=int, default=512, help="Swift chunks of 64 KiB")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    from zarrstores.minio import MinioStore
    from zarrstores.swift import SwiftStore

    rng = np.random.default_rng(7)
    rows: list[tuple[str, dict[str, float], str]] = []
    with BenchServers() as servers, zarr.config.set({"async.concurrency": 16}):
        small = 16 << 10  # float32 items of 64 KiB
        data = rng.random(args.chunks * small, dtype=np.float32)
        opts = servers.swift_options()
        runner, raw = LoopRunner(), RawSwift(servers.swift_url(), servers.swift_token)
        runner.run(raw.create_container("raw"))
        chunks = [
            (f"r/{i}", data[i * small : (i + 1) * small].tobytes()) for i in range(args.chunks)
        ]
        swift_ways = {
            "SwiftStore (MD5 ETag)": _writer(
                SwiftStore("ck1", "", opts), len(data), small, data, True
            ),
            "SwiftStore (none)": _writer(
                SwiftStore("ck2", "", opts), len(data), small, data, False
            ),
            "raw aiohttp (none)": lambda: runner.run(raw.put_all("raw", chunks)),
        }
        rows.append(("Swift, loopback", _rounds(swift_ways, args.reps), "SwiftStore (none)"))
        runner.run(raw.close())
        runner.close()

        data = rng.random(args.mib * CHUNK_ITEMS, dtype=np.float32)
        target = servers.s3.endpoint.removeprefix("http://")
        proxy = DelayProxy(target, RTT / 2, servers.dir / "delay-checksum.log").start()
        try:
            url, token, region = (
                f"http://127.0.0.1:{proxy.port}",
                servers.oidc_token(),
                servers.s3.region,
            )
            keys = static_keys(servers)
            s3_ways = {}
            for name, checked in (("MinioStore (SHA-256)", True), ("MinioStore (none)", False)):
                with contextlib.nullcontext() if checked else unchecked():
                    store = MinioStore(servers.new_bucket(), endpoint_url=url, token=token)
                    s3_ways[name] = _writer(store, len(data), CHUNK_ITEMS, data, checked)
            obs = obstore_store(servers.new_bucket(), keys, url, region)
            s3_ways["obstore ObjectStore (none)"] = _writer(obs, len(data), CHUNK_ITEMS, data, True)
            rows.append(
                (f"S3, +{RTT * 1000:.0f} ms", _rounds(s3_ways, args.reps), "MinioStore (none)")
            )
        finally:
            proxy.stop()
    print(f"Writes, median of {args.reps}; ratio = the unchecked store's time / this time")
    for where, medians, base in rows:
        for name, seconds in medians.items():
            print(f"{where:16} {name:28} {seconds:7.3f} s  {medians[base] / seconds:5.2f}x")


if __name__ == "__main__":
    main()
