"""``python -m benchmarks.frames [--mb 200]``: dataframes on the frame store vs Shoots.

Put and get of one large dataframe (20 columns: a sorted ``id`` and 19 random doubles) and an
SQL query selecting 1% of its rows and 2 of its columns, by:
- ``FrameStore`` (the library) on local Swift and on local S3 (SeaweedFS),
- ``zarrstores frames serve`` on each, through the Shoots protocol (Arrow Flight),
- ``shoots-server`` 0.1.1 from PyPI on local disk, through the same client code.
Both servers run as their own processes. The bytes each query moves between the frame store
and the object server are counted at a proxy (Shoots reads its local disk: not counted).
Writes ``benchmarks/results/frames-<MB>mb.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pyarrow import flight

from zarrstores.auth import STSCredentials
from zarrstores.devserver._proc import free_port, listening, spawn, stop, venv_bin, wait_until
from zarrstores.devserver.byteproxy import ByteCountingProxy
from zarrstores.devserver.shoots import SHOOTS_VERSION, ShootsServerProcess
from zarrstores.frames import FrameStore, PutMode

from ._measure import median_seconds
from ._servers import BenchServers

RESULTS = Path(__file__).parent / "results"
MB = 1_000_000


def dataframe(megabytes: int) -> pd.DataFrame:
    """~``megabytes`` MB of 20 columns of 8-byte values."""
    rows = megabytes * MB // (20 * 8)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"id": np.arange(rows)})
    for i in range(1, 20):
        frame[f"c{i}"] = rng.random(rows)
    return frame


class FlightShoots:
    """The Shoots protocol with pyarrow's Flight client (what ``ShootsClient`` sends)."""

    def __init__(self, port: int) -> None:
        self.client = flight.FlightClient(f"grpc://127.0.0.1:{port}")

    def put(self, name: str, table: pa.Table) -> None:
        command = json.dumps({"name": name, "mode": "replace", "bucket": None}).encode()
        writer, _ = self.client.do_put(flight.FlightDescriptor.for_command(command), table.schema)
        with writer:
            writer.write_table(table, max_chunksize=5000)

    def get(self, name: str, sql: str | None = None) -> pa.Table:
        ticket: dict[str, Any] = {"name": name, "bucket": None}
        if sql:
            ticket["sql"] = sql
        return self.client.do_get(flight.Ticket(json.dumps(ticket))).read_all()


@contextmanager
def frames_serve(root: str, env: dict[str, str], log: Path) -> Iterator[int]:
    """``zarrstores frames serve`` on a free port, credentials from ``env``."""
    port = free_port()
    cmd = [venv_bin("zarrstores"), "frames", "serve", "--root", root, "--port", str(port)]
    proc = spawn(cmd, log=log, env={"PATH": os.environ["PATH"], **env})
    try:
        wait_until(lambda: listening(port), what="frames serve", procs=[proc], log=log)
        yield port
    finally:
        stop([proc])


def run(megabytes: int, reps: int) -> str:
    frame = dataframe(megabytes)
    table = pa.Table.from_pandas(frame)
    rows = len(frame)
    sql = f"SELECT id, c7 FROM big WHERE id < {rows // 100}"
    lines = [
        f"### Frames: {megabytes} MB dataframe ({rows:,} rows x 20 columns), "
        f"query of 1% of rows and 2 columns (median of {reps})",
        "",
        "| contender | put s | get s | SQL s | bytes moved per SQL query | of stored |",
        "|---|---:|---:|---:|---:|---:|",
    ]

    def row(name: str, put: float, get: float, query: float, moved: str, share: str) -> None:
        lines.append(f"| {name} | {put:.2f} | {get:.2f} | {query:.3f} | {moved} | {share} |")
        print(lines[-1], flush=True)

    with BenchServers() as servers:
        token_file = servers.dir / "token"
        token_file.write_text(servers.oidc_token())
        bucket = servers.new_bucket()
        backends = {
            "Swift": (
                "swift://frames/bench",
                servers.swift.proxy_url,
                lambda url: {
                    "preauthurl": f"{url}/v1/AUTH_test",
                    "preauthtoken": servers.swift_token,
                },
                {"OS_STORAGE_URL": servers.swift_url(), "OS_AUTH_TOKEN": servers.swift_token},
            ),
            "S3": (
                f"minio://{bucket}/bench",
                servers.s3.endpoint,
                lambda url: {
                    "endpoint_url": url,
                    "skip_instance_cache": True,
                    "credentials": STSCredentials(servers.s3.endpoint, servers.oidc_token()),
                },
                {"AWS_ENDPOINT_URL": servers.s3.endpoint, "BEARER_TOKEN_FILE": str(token_file)},
            ),
        }
        for label, (root, target, options, env) in backends.items():
            store = FrameStore(root, **options(target))
            put = median_seconds(1, lambda s=store: s.put("big", frame, mode=PutMode.REPLACE))
            get = median_seconds(reps, lambda s=store: s.get("big", output="arrow"))
            query = median_seconds(reps, lambda s=store: s.get("big", sql, output="arrow"))
            stored = sum(store.fs.du(store.url("big").split("://", 1)[1], total=False).values())
            with ByteCountingProxy(target) as proxy:
                FrameStore(root, **options(proxy.url)).get("big", sql, output="arrow")
                moved = proxy.received + proxy.sent
            row(f"FrameStore on {label}", put, get, query, f"{moved:,}", f"{moved / stored:.2%}")
            with frames_serve(root, env, servers.dir / f"serve-{label}.log") as port:
                client = FlightShoots(port)
                put = median_seconds(1, lambda c=client: c.put("big", table))
                get = median_seconds(reps, lambda c=client: c.get("big"))
                query = median_seconds(reps, lambda c=client: c.get("big", sql))
            row(
                f"zarrstores frames serve on {label} (Flight)",
                put,
                get,
                query,
                "same reads as above",
                "",
            )
        with (
            tempfile.TemporaryDirectory(dir=servers.dir) as disk,
            ShootsServerProcess(Path(disk), servers.dir / "shoots.log") as shoots,
        ):
            client = FlightShoots(shoots.port)
            put = median_seconds(1, lambda: client.put("big", table))
            get = median_seconds(reps, lambda: client.get("big"))
            query = median_seconds(reps, lambda: client.get("big", sql))
            row(
                f"shoots-server {SHOOTS_VERSION}, local disk (Flight)",
                put,
                get,
                query,
                "local disk",
                "-",
            )
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="size of the dataframe in MB")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of get and SQL")
    parser.add_argument("--out", type=Path, help="write here (default: results/frames-<MB>mb.md)")
    args = parser.parse_args(argv)
    text = run(args.mb, args.reps)
    path = args.out or RESULTS / f"frames-{args.mb}mb.md"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    print(f"written to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
