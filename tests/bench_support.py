"""Running a benchmark script the way its README line does: ``python -m benchmarks.<name>``
from the repository root, in a process of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_benchmark(name: str, *args: str, timeout: float = 300) -> str:
    """The standard output of ``python -m benchmarks.<name> *args``; fails the test, with the
    end of its standard error, when the script does not exit with 0."""
    result = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout
