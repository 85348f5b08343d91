"""``python -m benchmarks.rgw_sts_expiry [--minutes 48]``: a long write across STS session
expiries on a real Ceph RGW, then every chunk read back.

RGW (Pacific) grants sessions of at least 900 s (``DurationSeconds``) and has no setting to make
them shorter, so crossing three expiries takes more than 45 minutes: too long for the test suite,
which checks the same on SeaweedFS with 8 s sessions (``tests/test_minio_sts.py``).

Two writers run at once, each with dask (threads) into its own zarr array, a block of chunks at
a time, with ``--pace`` seconds between blocks:

- ``ahead``: ``MinioStore`` with the credentials a user gets from the environment
  (``BEARER_TOKEN_FILE`` + ``AWS_ROLE_ARN``, ``duration=900``): renews before each expiry.
- ``told``: ``minio://`` (``MinioFileSystem`` under zarr's ``FsspecStore``) with STS credentials
  that are not told when a session ends: each session is used until RGW refuses it, so every
  expiry is met at the server.

The OIDC token file is rewritten every 4 minutes with a token valid for 10 (as sts-wire keeps
one fresh). A failed block is counted and its rows left out; at the end every chunk written is
read back and compared. Results go to ``benchmarks/results/rgw-sts-expiry.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from zarrstores.auth import S3Credentials, STSCredentials

SESSION = 900
"""RGW's shortest session (s): ``DurationSeconds`` below it is refused."""
COLS = 64
ROWS_PER_CHUNK = 16
"""Chunks of 16 x 64 float64 (8 KiB before compression)."""
CHUNKS_PER_BLOCK = 8
MAX_ROWS = 1 << 24
RESULTS = Path(__file__).parent / "results" / "rgw-sts-expiry.md"


def expected(rows: slice) -> np.ndarray:
    """The values of ``rows``: row r holds r * COLS ... r * COLS + COLS - 1."""
    start, stop = rows.start, rows.stop
    return np.arange(start * COLS, stop * COLS, dtype="f8").reshape(stop - start, COLS)


class ToldByServer(STSCredentials):
    """STS credentials that do not know when their session ends: used until RGW refuses them.
    ``sessions`` keeps (exchange time, real expiry) of each."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sessions: list[tuple[float, float | None]] = []

    def _exchange(self) -> S3Credentials:
        creds = super()._exchange()
        self.sessions.append((time.time(), creds.expires_at))
        return dataclasses.replace(creds, expires_at=None)


@dataclasses.dataclass
class Writer:
    name: str
    store: Any
    credentials: STSCredentials
    rows: int = 0
    blocks: int = 0
    failed_rows: list[tuple[int, int]] = dataclasses.field(default_factory=list)
    failures: list[str] = dataclasses.field(default_factory=list)
    sessions: list[tuple[float, float | None]] = dataclasses.field(default_factory=list)
    last_write: float = 0.0
    seen_exchanges: int = 0
    refused: int = 0
    """Sessions the server refused (the request was then resent with a new one)."""

    def __post_init__(self) -> None:
        # Count the server's refusals: the provider's refresh after a failed request.
        creds = self.credentials
        sync, async_ = creds.refresh_after_failure, creds.arefresh_after_failure

        def refresh(failed: Any) -> Any:
            self.refused += 1
            return sync(failed)

        async def arefresh(failed: Any) -> Any:
            self.refused += 1
            return await async_(failed)

        creds.refresh_after_failure = refresh  # type: ignore[method-assign]
        creds.arefresh_after_failure = arefresh  # type: ignore[method-assign]

    def note_sessions(self) -> None:
        """Record a new session of the renewing writer (exchange time, its expiry)."""
        if isinstance(self.credentials, ToldByServer):
            self.sessions = self.credentials.sessions
            return
        n = self.credentials.exchanges
        if n != self.seen_exchanges:
            self.seen_exchanges = n
            expiry = self.credentials.get().expires_at
            self.sessions.append((expiry - SESSION if expiry else time.time(), expiry))


def write_until(writer: Writer, deadline: float, workers: int, pace: float) -> None:
    """Create the array, then write blocks with dask's threaded scheduler until ``deadline``."""
    import dask.array as da
    import zarr

    array = zarr.create_array(
        writer.store,
        name="x",
        shape=(MAX_ROWS, COLS),
        chunks=(ROWS_PER_CHUNK, COLS),
        dtype="f8",
        fill_value=-1.0,
    )
    step = ROWS_PER_CHUNK * CHUNKS_PER_BLOCK
    while time.time() < deadline and writer.rows + step <= MAX_ROWS:
        rows = slice(writer.rows, writer.rows + step)
        block = da.from_array(expected(rows), chunks=(ROWS_PER_CHUNK, COLS))
        try:
            da.store(block, array, regions=(rows, slice(None)), lock=False,
                     scheduler="threads", num_workers=workers)  # fmt: skip
        except Exception as e:  # counted and reported: the run goes on
            writer.failed_rows.append((rows.start, rows.stop))
            line = f"{type(e).__name__}: {e}".splitlines()[0][:200]
            writer.failures.append(f"{_clock(time.time())} rows {rows.start}-{rows.stop}: {line}")
            print(f"  ! {writer.name}: {writer.failures[-1]}", flush=True)
        else:
            writer.blocks += 1
            writer.last_write = time.time()
        writer.rows = rows.stop
        writer.note_sessions()
        time.sleep(pace)


def read_back(writer: Writer) -> tuple[int, int]:
    """(chunks read and equal, chunks that differ or are missing) of the rows written."""
    import zarr

    array = zarr.open_array(writer.store, path="x", mode="r")
    failed = {r for a, b in writer.failed_rows for r in range(a, b, ROWS_PER_CHUNK)}
    good = bad = 0
    step = ROWS_PER_CHUNK * 64
    for start in range(0, writer.rows, step):
        rows = slice(start, min(start + step, writer.rows))
        got = array[rows]
        want = expected(rows)
        for r in range(rows.start, rows.stop, ROWS_PER_CHUNK):
            if r in failed:
                continue
            i = r - rows.start
            if np.array_equal(got[i : i + ROWS_PER_CHUNK], want[i : i + ROWS_PER_CHUNK]):
                good += 1
            else:
                bad += 1
    return good, bad


def expiries_crossed(writer: Writer, start: float) -> int:
    """Sessions that ended after the run started and while the writer still wrote (the last
    block was written after their expiry)."""
    return sum(
        1
        for _, expiry in writer.sessions
        if expiry is not None and start < expiry < writer.last_write
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rgw_sts_expiry",
                                     description=__doc__.splitlines()[0])  # fmt: skip
    parser.add_argument("--minutes", type=float, default=48.0,
                        help="how long to write (default 48: > 3 x 900 s sessions)")  # fmt: skip
    parser.add_argument("--workers", type=int, default=4, help="dask threads per writer")
    parser.add_argument("--pace", type=float, default=1.0, help="pause between blocks (s)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results markdown file")
    args = parser.parse_args(argv)

    import zarr

    from zarrstores.devserver.oidc import OIDCIssuer
    from zarrstores.devserver.rgw import RGWServer
    from zarrstores.minio import MinioFileSystem, MinioStore

    base = Path(tempfile.mkdtemp(prefix="zrgwsts-"))
    token_file = base / "token"
    with OIDCIssuer() as issuer, RGWServer(issuer, base / "c", memstore_bytes=2 << 30) as rgw:
        refresher = issuer.refresh_token_file(token_file, every=240, expires_in=600)
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            os.environ.pop(name, None)
        os.environ.update(rgw.sts_env(token_file))
        bucket = f"soak-{uuid.uuid4().hex[:12]}"
        rgw.admin_client().create_bucket(Bucket=bucket)

        ahead_store = MinioStore(bucket, "ahead.zarr", duration=SESSION)
        told = ToldByServer(rgw.endpoint, token_file=token_file,
                            role_arn=rgw.readwrite_role_arn, duration=SESSION)  # fmt: skip
        told_fs = MinioFileSystem(endpoint_url=rgw.endpoint, credentials=told,
                                  asynchronous=True, skip_instance_cache=True)  # fmt: skip
        writers = [
            Writer("ahead", ahead_store, ahead_store.credentials),
            Writer("told", zarr.storage.FsspecStore(told_fs, path=f"{bucket}/told.zarr"), told),
        ]
        start = time.time()
        deadline = start + args.minutes * 60
        print(f"{_clock(start)} writing for {args.minutes:g} min to {rgw.endpoint}/{bucket} "
              f"(RGW pids {rgw.pids}, this pid {os.getpid()})", flush=True)  # fmt: skip
        errors: list[BaseException] = []

        def run(writer: Writer) -> None:
            try:
                write_until(writer, deadline, args.workers, args.pace)
            except BaseException as e:
                errors.append(e)
                print(f"  ! {writer.name} stopped: {type(e).__name__}: {e}", flush=True)

        threads = [threading.Thread(target=run, args=(w,), daemon=True) for w in writers]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(60)
            now = time.time()
            states = ", ".join(
                f"{w.name}: {w.rows // ROWS_PER_CHUNK} chunks, {w.credentials.exchanges} "
                f"exchanges, {w.refused} refused, {len(w.failures)} failed blocks"
                for w in writers
            )
            print(f"{_clock(now)} +{(now - start) / 60:.1f} min; {states}; "
                  f"load {_load()}", flush=True)  # fmt: skip
        ended = time.time()
        refresher.stop()
        print(f"{_clock(ended)} reading back", flush=True)
        results = []
        for w in writers:
            w.note_sessions()
            good, bad = read_back(w)
            results.append((w, good, bad, expiries_crossed(w, start)))
            print(f"  {w.name}: {good} chunks equal, {bad} differ", flush=True)
        read_seconds = time.time() - ended
        report = _report(args, start, ended, read_seconds, results, refresher.count, errors)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)
        print(report, flush=True)
    ok = not errors and all(
        not w.failures and bad == 0 and crossed >= 3 for w, _, bad, crossed in results
    )
    return 0 if ok else 1


def _report(
    args: argparse.Namespace,
    start: float,
    ended: float,
    read_seconds: float,
    results: list[tuple[Writer, int, int, int]],
    rewrites: int,
    errors: list[BaseException],
) -> str:
    from importlib.metadata import version

    minutes = (ended - start) / 60
    lines = [
        "# A long write across STS session expiries on Ceph RGW",
        "",
        f"- Command: `python -m benchmarks.rgw_sts_expiry --minutes {args.minutes:g}` "
        f"({minutes:.1f} min of writing, {read_seconds:.0f} s reading back)",
        f"- Date: {_clock(start, date=True)} to {_clock(ended)} UTC; Ceph RGW "
        f"{_ceph_version()}, zarr {version('zarr')}, dask {version('dask')}, obstore "
        f"{version('obstore')}, s3fs {version('s3fs')}, Python {platform.python_version()}",
        f"- Sessions of {SESSION} s (RGW's shortest); two writers at once, each dask with "
        f"{args.workers} threads writing blocks of {CHUNKS_PER_BLOCK} chunks "
        f"({ROWS_PER_CHUNK} x {COLS} float64) with {args.pace:g} s between blocks.",
        "- `ahead`: `MinioStore` with credentials from the environment (`BEARER_TOKEN_FILE`, "
        "`AWS_ROLE_ARN`, `duration=900`), renewing before expiry. `told`: `minio://` "
        "(`MinioFileSystem` in zarr's `FsspecStore`) whose credentials are not told the expiry: "
        "each session is used until RGW refuses it, then exchanged anew and the request resent.",
        f"- The OIDC token file was rewritten {rewrites} times (every 240 s, tokens valid 600 s).",
        f"- Load average at the end: {_load()} (2 cores, shared).",
        "",
        "| writer | STS exchanges | sessions refused by RGW | expiries crossed | blocks written "
        "| chunks read back equal | chunks differing | failed blocks |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for w, good, bad, crossed in results:
        lines.append(f"| {w.name} | {w.credentials.exchanges} | {w.refused} | {crossed} | "
                     f"{w.blocks} | "
                     f"{good} | {bad} | {len(w.failures)} |")  # fmt: skip
    lines += ["", "Sessions (exchange time -> expiry, UTC):", ""]
    for w, *_ in results:
        spans = ", ".join(f"{_clock(t)} -> {_clock(e) if e else '?'}" for t, e in w.sessions)
        lines.append(f"- {w.name}: {spans}")
    failures = [f for w, *_ in results for f in w.failures] + [repr(e) for e in errors]
    lines += ["", "Failures: " + ("none" if not failures else "")]
    lines += [f"- {f}" for f in failures]
    return "\n".join(lines) + "\n"


def _clock(t: float, date: bool = False) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S")


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _ceph_version() -> str:
    import subprocess

    try:
        out = subprocess.run(["radosgw", "--version"], capture_output=True, text=True,
                             timeout=10, check=False).stdout  # fmt: skip
    except OSError:
        return "?"
    return out.split()[2] if len(out.split()) > 2 else "?"


if __name__ == "__main__":
    sys.exit(main())
