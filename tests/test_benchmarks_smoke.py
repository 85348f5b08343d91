"""One tiny round of the benchmarks, so that the scripts keep working (the numbers mean nothing).

The full run is ``make bench`` (``python -m benchmarks.run``), not part of the test suite.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from bench_support import run_benchmark

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # benchmarks/ is not an installed package
CONTENDERS = ("MinioStore", "minio:// FsspecStore", "s3fs", "obstore", "raw aiohttp")
REFERENCE = "zarr alone (memory, no I/O)"


def _table(markdown: str, title: str) -> list[dict[str, str]]:
    """The rows of the table under the heading that starts with ``title``, as dicts."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"### {title}"))
    table = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            if table:
                break
            continue
        table.append([cell.strip() for cell in line.strip("|").split("|")])
    header, _, *rows = table
    return [dict(zip(header, row, strict=True)) for row in rows]


def test_a_tiny_s3_round_writes_a_table_with_numbers(tmp_path: Path) -> None:
    out = tmp_path / "results.md"
    stdout = run_benchmark("run", "--tiny", "--only", "s3", "--out", str(out), timeout=120)
    markdown = out.read_text()
    assert stdout.strip() == markdown.strip()
    assert "## Goals" in markdown and "S3 read: MinioStore >= 3x s3fs" in markdown

    for op in ("write", "read"):
        rows = _table(markdown, f"S3 {op} 16 x 64 KiB")
        by_name = {r["contender"].removesuffix(" *(ours)*"): r for r in rows}
        assert list(by_name) == [*CONTENDERS, REFERENCE]
        for row in rows:
            assert float(row["MiB/s"].replace(",", "")) > 0, row
            assert float(row["req/s"].replace(",", "")) > 0, row
            assert float(row["client CPU ms/req"]) > 0, row
        assert by_name["raw aiohttp"]["x ceiling"] == "1.00x"
        assert all(by_name[name]["MinioStore ÷ this"].endswith("x") for name in CONTENDERS[1:])
        assert by_name[REFERENCE]["x ceiling"] == ""  # no server: not compared


def test_swiftspec_is_loaded_without_taking_over_swift_urls() -> None:
    import fsspec

    from benchmarks.swift import swiftspec_fs, swiftspec_url
    from zarrstores.swift import SwiftFileSystem

    fs = swiftspec_fs("http://127.0.0.1:8080/v1/AUTH_test", "token")
    assert type(fs).__name__ == "SWIFTFileSystem"
    assert fs.headers_for_url("https://127.0.0.1:8080/v1/AUTH_test/c/o") == {
        "X-Auth-Token": "token"
    }
    assert (
        swiftspec_url("http://127.0.0.1:8080/v1/AUTH_test", "c")
        == "swift://127.0.0.1:8080/AUTH_test/c"
    )
    assert fsspec.get_filesystem_class("swift") is SwiftFileSystem


def test_swiftspec_reaches_a_swift_api_below_a_path() -> None:
    """Ceph RGW serves Swift at ``/swift/v1``: swiftspec addresses ``/v1`` and its HTTP
    session puts the path back."""
    import asyncio

    from benchmarks.swift import swiftspec_fs, swiftspec_url

    url = "http://127.0.0.1:8080/swift/v1/AUTH_test"
    assert swiftspec_url(url, "c") == "swift://127.0.0.1:8080/AUTH_test/c"
    fs = swiftspec_fs(url, "token")
    assert fs.headers_for_url("https://127.0.0.1:8080/v1/AUTH_test/c/o") == {
        "X-Auth-Token": "token"
    }

    async def rewritten() -> str:
        session = await fs.get_client()
        try:
            return session._http("https://127.0.0.1:8080/v1/AUTH_test/c/o")
        finally:
            await session.close()

    assert asyncio.run(rewritten()) == "http://127.0.0.1:8080/swift/v1/AUTH_test/c/o"


def test_ratios_per_server_put_each_server_in_a_column() -> None:
    from benchmarks._measure import Row, Sample
    from benchmarks.run import per_server

    def row(scenario: str, contender: str, role: str, seconds: float) -> Row:
        return Row(scenario, contender, role, [Sample(seconds, 0.0, 0.0)])  # type: ignore[arg-type]

    rows = [
        row("Swift write 16 x 64 KiB", "SwiftStore", "ours", 2.0),
        row("Swift write 16 x 64 KiB", "raw aiohttp", "ceiling", 1.0),
        row("Swift +20 ms RTT write 16 x 64 KiB", "SwiftStore", "ours", 9.0),
        row("Swift +20 ms RTT write 16 x 64 KiB", "raw aiohttp", "ceiling", 1.0),
        row("Swift on Ceph RGW write 16 x 64 KiB", "SwiftStore", "ours", 1.0),
        row("Swift on Ceph RGW write 16 x 64 KiB", "raw aiohttp", "ceiling", 4.0),
        row("S3 write 16 x 64 KiB", "MinioStore", "ours", 1.0),
    ]
    assert per_server(rows[:4]) == ""  # one server: nothing to put side by side
    lines = per_server(rows).splitlines()
    assert lines[2] == "| contender | write, OpenStack Swift | write, Ceph RGW |"
    assert lines[4] == "| SwiftStore | 0.50x | 4.00x |"
    assert lines[5] == "| raw aiohttp | 1.00x | 1.00x |"
    assert not any("S3" in line for line in lines)  # S3 ran on one server only


def test_a_tiny_read_cpu_round_prints_both_ratios() -> None:
    stdout = run_benchmark("readcpu", "--mib", "4", "--reps", "1")
    pattern = r"MinioStore x ObjectStore: time (\d+\.\d+)x, CPU (\d+\.\d+)x"
    ratios = re.findall(pattern, stdout)
    assert len(ratios) == 2 and all(float(t) > 0 and float(c) > 0 for t, c in ratios), stdout


def test_a_login_round_shows_that_new_stores_share_one_login(tmp_path: Path) -> None:
    """Every contender's row in both tables; our two kinds of store, new at each open, log in
    at most once between them (a login per open would be two); the proxy counts logins."""
    out = tmp_path / "logins.md"
    stdout = run_benchmark("logins", "--reps", "1", "--output", str(out), timeout=240)
    markdown = out.read_text()
    assert stdout.strip() == markdown.strip()
    for login in ("Keystone password", "tempauth"):
        rows = _table(markdown, f"open_zarr with a new store, {login}")
        by_name = {r["contender"].removesuffix(" *(ours)*"): r for r in rows}
        assert list(by_name) == ["SwiftStore", "swift:// URL", "zarr-swiftstore"], login
        assert all(float(r["seconds"]) > 0 for r in rows), rows
        ours = [by_name["SwiftStore"], by_name["swift:// URL"]]
        assert sum(int(r["logins"]) for r in ours) <= 1, (login, ours)
        # The counter sees logins: ours in a warm-up or timed, zarr-swiftstore's each open.
        assert sum(int(r["logins"]) + int(r["warm-up logins"]) for r in ours) >= 1, ours
        assert int(by_name["zarr-swiftstore"]["logins"]) >= 1, by_name["zarr-swiftstore"]
        assert by_name["zarr-swiftstore"]["SwiftStore ÷ this"].endswith("x")


def test_a_tiny_checksum_round_times_writes_with_and_without_the_checks() -> None:
    """Six rows with times and ratios; switched off, the S3 checksum is really gone (and back
    after), so the unchecked rows measure what the checks cost."""
    from benchmarks.checksum import unchecked
    from zarrstores.auth import AnonymousS3
    from zarrstores.minio._client import S3Client

    stdout = run_benchmark("checksum", "--mib", "4", "--chunks", "8", "--reps", "1")
    rows = re.findall(r"^(Swift|S3).*\((.+)\)\s+(\d+\.\d+) s\s+(\d+\.\d+)x$", stdout, re.M)
    assert [r[1] for r in rows] == ["MD5 ETag", "none", "none", "SHA-256", "none", "none"], stdout
    assert all(float(r[2]) > 0 and float(r[3]) > 0 for r in rows), stdout
    client = S3Client("http://127.0.0.1:1", AnonymousS3())
    assert client._new_store("b", None).config["checksum_algorithm"] == "sha256"
    with unchecked():
        assert "checksum_algorithm" not in client._new_store("b", None).config
    assert client._new_store("b", None).config["checksum_algorithm"] == "sha256"
