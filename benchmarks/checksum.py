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

from ._arrays import _chunk_items, _data, _zarr_write, zarr_config
from ._proxy import DelayProxy
from ._raw import LoopRunner, RawSwift
from ._servers import BenchServers
from .latency import CHUNK_ITEMS, RTT, _array
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


def _writer(make_write: Callable[[], Callable[[], None]], checked: bool) -> Callable[[], None]:
    """``make_write()``'s write, with the checks or without; the array is made likewise (its
    first request makes the S3 client's obstore store, which the client then reuses)."""
    checks = contextlib.nullcontext if checked else unchecked
    with checks():
        write = make_write()

    def run() -> None:
        with checks():
            write()

    return run


def _whole(store: Any, data: np.ndarray) -> Callable[[], None]:
    """The write of ``data`` into a new array of 1 MiB chunks in ``store``."""
    array = _array(store, False, len(data))
    return lambda: array.__setitem__(slice(None), data)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.checksum", description=__doc__)
    parser.add_argument("--mib", type=int, default=512, help="S3 array size in MiB (default 512)")
    parser.add_argument("--chunks", type=int, default=512, help="Swift chunks of 64 KiB")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    from zarrstores.minio import MinioStore
    from zarrstores.swift import SwiftStore

    rows: list[tuple[str, dict[str, float], str]] = []
    with BenchServers() as servers, zarr_config():
        data = _data(args.chunks)
        opts = servers.swift_options()
        runner, raw = LoopRunner(), RawSwift(servers.swift_url(), servers.swift_token)
        runner.run(raw.create_container("raw"))
        chunks = _chunk_items("r", data)
        swift_ways = {
            f"SwiftStore ({label})": _writer(
                lambda c=container: _zarr_write(SwiftStore(c, "", opts), "a", data), checked
            )
            for label, container, checked in (("MD5 ETag", "ck1", True), ("none", "ck2", False))
        }
        swift_ways["raw aiohttp (none)"] = lambda: runner.run(raw.put_all("raw", chunks))
        rows.append(("Swift, loopback", _rounds(swift_ways, args.reps), "SwiftStore (none)"))
        runner.run(raw.close())
        runner.close()

        data = np.random.default_rng(7).random(args.mib * CHUNK_ITEMS, dtype=np.float32)
        target = servers.s3.endpoint.removeprefix("http://")
        proxy = DelayProxy(target, RTT / 2, servers.dir / "delay-checksum.log").start()
        try:
            url, token = f"http://127.0.0.1:{proxy.port}", servers.oidc_token()
            s3_ways = {
                f"MinioStore ({label})": _writer(
                    lambda: _whole(
                        MinioStore(servers.new_bucket(), endpoint_url=url, token=token), data
                    ),
                    checked,
                )
                for label, checked in (("SHA-256", True), ("none", False))
            }
            keys, region = static_keys(servers), servers.s3.region
            obs = obstore_store(servers.new_bucket(), keys, url, region)
            s3_ways["obstore ObjectStore (none)"] = _whole(obs, data)
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
