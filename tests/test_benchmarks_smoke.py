"""One tiny round of the benchmarks, so that the scripts keep working (the numbers mean nothing).

The full run is ``make bench`` (``python -m benchmarks.run``), not part of the test suite.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--tiny", "--only", "s3", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    markdown = out.read_text()
    assert result.stdout.strip() == markdown.strip()
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
