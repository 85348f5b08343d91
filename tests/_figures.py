"""Figures of the reliability tests, gathered into one JSON file for
``scripts/reliability_figures.py``.

Each test records what it did under its own id (``figures.add(section="expiry",
expiries_survived=5)``): numbers add up, other values are kept. The file is
``$ZARRSTORES_FIGURES``, else ``<basetemp>/reliability.json``; it is rewritten at every record,
so a run that fails half-way still leaves what was counted.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

import pytest

__all__ = ["Figures", "figures_fixture"]


class Figures:
    """The figures of one test (``test`` is its name with parameters, e.g. ``test_x[swift]``)."""

    def __init__(self, path: Path, test: str) -> None:
        self.path = path
        self.test = test

    def add(self, **values: Any) -> None:
        """Add numbers to the test's counts; store anything else as given."""
        # Test workers running in parallel (pytest -n) share the file: one writer at a time.
        with open(self.path.with_name(self.path.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = json.loads(self.path.read_text()) if self.path.exists() else {}
            entry = data.setdefault(self.test, {})
            for name, value in values.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    entry[name] = entry.get(name, 0) + value
                else:
                    entry[name] = value
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
            tmp.replace(self.path)


@pytest.fixture(name="figures")
def figures_fixture(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Figures:
    """Where this test records its figures."""
    # The run's base directory: with parallel workers, the parent of each worker's own.
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    path = os.environ.get("ZARRSTORES_FIGURES") or base / "reliability.json"
    return Figures(Path(path), request.node.name)
