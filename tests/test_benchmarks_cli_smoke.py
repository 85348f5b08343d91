"""A tiny round of ``benchmarks/cli_copy.py`` (zarrstores cp against rclone), so that the script
keeps working; the numbers of so few objects mean nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_tiny_copy_benchmark_writes_both_rows(tmp_path: Path) -> None:
    out = tmp_path / "cli_copy.md"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.cli_copy", "--objects", "40", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split("|")[1:-1] for line in out.read_text().splitlines() if "| " in line]
    tools = {cells[0].strip(): cells for cells in rows[1:]}
    assert set(tools) == {"zarrstores cp -r", "rclone copy --checksum"}
    for cells in tools.values():
        assert all(float(c.replace(",", "")) > 0 for c in cells[1:])
