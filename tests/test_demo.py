"""`make demo`, the main job for a new user, runs end to end: both backends written, read back,
shared and made private again, every check passing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("servers", [[], ["--rgw"]], ids=["swift-and-s3", "rgw"])
def test_the_demo_passes_every_check(tmp_path: Path, servers: list[str]) -> None:
    """With OpenStack Swift and SeaweedFS, and with one Ceph RGW serving both APIs."""
    result = subprocess.run(
        [sys.executable, "-m", "zarrstores.demo", *servers],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr[-3000:]
    assert "All checks passed." in out and "FAIL" not in out
    assert out.count("    ok  ") >= 13
