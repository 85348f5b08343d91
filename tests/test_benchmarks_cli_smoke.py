"""A tiny round of ``benchmarks/cli_copy.py`` (zarrstores cp against rclone, and the checked
round trip Swift -> S3 -> local -> Swift with a kill and resume), so that the script keeps
working; the numbers of so few objects mean nothing."""

from __future__ import annotations

from pathlib import Path

from bench_support import run_benchmark


def test_a_tiny_copy_benchmark_writes_both_tables(tmp_path: Path) -> None:
    out = tmp_path / "cli_copy.md"
    args = ["--objects", "120", "--jobs", "1", "--out", str(out)]
    run_benchmark("cli_copy", *args)
    text = out.read_text()
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| ")]
    named = {cells[0].strip(): cells for cells in rows}
    tools = {"zarrstores cp -r", "rclone copy --checksum"}
    legs = {"Swift -> S3", "S3 -> local", "local -> Swift"}
    assert tools | legs <= set(named)
    for name in tools | legs:
        assert all(float(c.replace(",", "")) > 0 for c in named[name][1:])
    assert "was killed (SIGKILL) with" in text and "left no partial file" in text
