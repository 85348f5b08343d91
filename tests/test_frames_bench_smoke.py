"""One tiny round of ``benchmarks/frames.py``, so that the script keeps working (the numbers
mean nothing at this size)."""

from __future__ import annotations

from pathlib import Path

from bench_support import run_benchmark


def test_frames_benchmark_runs(tmp_path: Path) -> None:
    out = tmp_path / "frames.md"
    run_benchmark("frames", "--mb", "2", "--reps", "1", "--out", str(out), timeout=280)
    rows = [line for line in out.read_text().splitlines() if line.startswith("| ")][1:]
    assert [row.split(" | ")[0].lstrip("| ") for row in rows] == [
        "FrameStore on Swift",
        "zarrstores frames serve on Swift (Flight)",
        "FrameStore on S3",
        "zarrstores frames serve on S3 (Flight)",
        "shoots-server 0.1.1, local disk (Flight)",
    ]
    for row in rows:
        put, get, query = (float(cell) for cell in row.split(" | ")[1:4])
        assert put > 0 and get > 0 and query > 0
    moved = rows[0].split(" | ")[4]
    assert int(moved.replace(",", "")) > 0
