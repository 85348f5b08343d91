"""``python -m benchmarks.readcpu [--mib N] [--reps N]``: client CPU of whole-array reads on S3,
``MinioStore`` against zarr's ``ObjectStore`` on obstore, for telling a real CPU gap from the
load: both read the same arrays (unsharded and sharded, 1 MiB chunks, 64 a shard) in one bucket
through the +30 ms delay proxy, interleaved, the order rotated each repetition. Prints per GiB
the median and least CPU seconds (all threads of this process), user and system shares,
minor page faults and MinioStore's ratios to ObjectStore; then the load average. Nothing is
written to disk.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

import numpy as np
import zarr

from ._proxy import DelayProxy
from ._servers import BenchServers
from .latency import CHUNK_ITEMS, RTT, _array
from .s3 import obstore_store, static_keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=256, help="array size in MiB (default 256)")
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    from zarrstores.minio import MinioStore

    data = np.random.default_rng(7).random(args.mib * CHUNK_ITEMS, dtype=np.float32)
    per_gib = 1024 / args.mib
    with BenchServers() as servers:
        target = servers.s3.endpoint.removeprefix("http://")
        proxy = DelayProxy(target, RTT / 2, servers.dir / "delay-readcpu.log").start()
        try:
            endpoint = f"http://127.0.0.1:{proxy.port}"
            bucket = servers.new_bucket()
            stores = {
                "MinioStore": MinioStore(bucket, endpoint_url=endpoint, token=servers.oidc_token()),
                "obstore ObjectStore": obstore_store(
                    bucket, static_keys(servers), endpoint, servers.s3.region
                ),
            }
            for sharded in (False, True):
                name = "sharded" if sharded else "plain"
                _array(stores["obstore ObjectStore"], sharded, len(data))[:] = data
                arrays = {k: zarr.open_array(s, path=name, mode="r") for k, s in stores.items()}
                rows: dict[str, list[tuple[float, ...]]] = {k: [] for k in arrays}
                for rep in range(args.reps):
                    order = list(arrays)[rep % 2 :] + list(arrays)[: rep % 2]
                    for way in order:
                        rows[way].append(_read(arrays[way], data))
                print(f"{name} whole read, {args.mib} MiB; medians per GiB:")
                for way, cells in rows.items():
                    med = [statistics.median(c[i] for c in cells) * per_gib for i in range(5)]
                    least = min(c[1] for c in cells) * per_gib
                    print(
                        f"  {way:20s} time {med[0]:5.2f} s, CPU {med[1]:5.2f} s "
                        f"(least {least:.2f}; user {med[2]:.2f}, system {med[3]:.2f}), "
                        f"page faults {med[4]:.0f}"
                    )
                ours, other = (
                    [statistics.median(c[i] for c in rows[k]) for i in (0, 1)] for k in rows
                )
                print(
                    f"  MinioStore x ObjectStore: time {other[0] / ours[0]:.2f}x, "
                    f"CPU {other[1] / ours[1]:.2f}x (>= 1.00x: ours costs no more)"
                )
        finally:
            proxy.stop()
    print("load average (1/5/15 min): " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))


def _read(array: zarr.Array, data: np.ndarray) -> tuple[float, ...]:
    """Seconds, CPU, user, system seconds and minor page faults of one whole read."""
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    c0, t0 = time.process_time(), time.perf_counter()
    out = array[:]
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    if not np.array_equal(out, data):
        raise AssertionError("read back other data than written")
    return (
        seconds,
        cpu,
        r1.ru_utime - r0.ru_utime,
        r1.ru_stime - r0.ru_stime,
        r1.ru_minflt - r0.ru_minflt,
    )


if __name__ == "__main__":
    main()
