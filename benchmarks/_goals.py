"""The backend issues' goals, checked against a run's rows."""

from __future__ import annotations

from dataclasses import dataclass

from ._measure import Row


@dataclass
class Goal:
    """One goal: what it asks, what was measured, whether it was met (None: not measured)."""

    goal: str
    measured: str
    met: bool | None

    @property
    def verdict(self) -> str:
        return {True: "met", False: "**missed**", None: "not measured"}[self.met]


def _find(rows: list[Row], scenario: str, contender: str) -> Row | None:
    for r in rows:
        if r.scenario.startswith(scenario) and r.contender == contender and r.ok and r.samples:
            return r
    return None


def _speed(
    rows: list[Row], scenario: str, ours: str, other: str, at_least: float, goal: str
) -> Goal:
    a, b = _find(rows, scenario, ours), _find(rows, scenario, other)
    if a is None or b is None:
        return Goal(goal, "", None)
    ratio = b.seconds / a.seconds
    return Goal(goal, f"{ratio:.2f}x ({a.seconds:.3f} s vs {b.seconds:.3f} s)", ratio >= at_least)


def _cpu(rows: list[Row], scenario: str, ours: str, raw: str, goal: str) -> Goal:
    a, b = _find(rows, scenario, ours), _find(rows, scenario, raw)
    if a is None or b is None or not a.cpu_ms_per_request or not b.cpu_ms_per_request:
        return Goal(goal, "", None)
    ratio = a.cpu_ms_per_request / b.cpu_ms_per_request
    measured = f"{ratio:.2f}x ({a.cpu_ms_per_request:.3f} vs {b.cpu_ms_per_request:.3f} ms/req)"
    return Goal(goal, measured, ratio <= 2.0)


def evaluate(rows: list[Row]) -> list[Goal]:
    """Every goal that the run's rows can answer."""
    goals: list[Goal] = []
    raw = "raw aiohttp"
    for ours in ("SwiftStore", "swift:// FsspecStore"):
        for label in ("Swift", "Swift +20 ms RTT"):
            for op in ("write", "read"):
                goals.append(
                    _speed(
                        rows, f"{label} {op}", ours, raw, 0.95, f"{label} {op}: {ours} >= 0.95x raw"
                    )
                )
        for op in ("write", "read"):
            goals.append(
                _cpu(
                    rows,
                    f"Swift {op}",
                    ours,
                    raw,
                    f"Swift {op}: {ours} client CPU/request <= 2x raw",
                )
            )
    for label in ("Swift clear", "Swift +20 ms RTT clear"):
        goals.append(
            _speed(
                rows,
                label,
                "SwiftStore.clear()",
                "zarr-swiftstore clear()",
                10,
                f"{label}: SwiftStore >= 10x zarr-swiftstore",
            )
        )
    for ours in ("MinioStore", "minio:// FsspecStore"):
        for op, vs_s3fs in (("read", 3.0), ("write", 2.0)):
            goals.append(
                _speed(
                    rows,
                    f"S3 {op}",
                    ours,
                    "s3fs",
                    vs_s3fs,
                    f"S3 {op}: {ours} >= {vs_s3fs:.0f}x s3fs",
                )
            )
            goals.append(
                _speed(rows, f"S3 {op}", ours, "obstore", 1.0, f"S3 {op}: {ours} >= 1.0x obstore")
            )
    sts = next(
        (
            r
            for r in rows
            if r.scenario.startswith("STS")
            and r.role == "ours"
            and "capped" in r.contender
            and r.ok
        ),
        None,
    )
    goal = "STS: <= 1 exchange per credential lifetime"
    if sts is None or int(sts.extra.get("exchanges", "0")) < 2:  # no refresh seen
        goals.append(Goal(goal, "", None))
    else:
        within = sts.extra["max per lifetime"]
        measured = (
            f"{within} within any credential's lifetime; "
            f"{sts.extra['per hour (900 s creds)']} per hour with 900 s credentials"
        )
        goals.append(Goal(goal, measured, int(within.lstrip(">= ")) <= 1))
    return [g for g in goals if g.met is not None] or goals


def goals_table(goals: list[Goal]) -> str:
    lines = ["| goal | measured | |", "| --- | --- | --- |"]
    lines += [f"| {g.goal} | {g.measured} | {g.verdict} |" for g in goals if g.met is not None]
    return "\n".join(lines)
