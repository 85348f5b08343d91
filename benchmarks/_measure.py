"""Wall time with client and server CPU seconds, and the rows of the result table."""

from __future__ import annotations

import os
import resource
import statistics
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

MiB = 1 << 20
_TICK = os.sysconf("SC_CLK_TCK")

Role = Literal["ours", "alt", "ceiling", "reference"]
"""``reference``: no server involved, shown for the CPU it takes (not compared)."""


def median_seconds(reps: int, fn: Callable[[], object]) -> float:
    """The median wall time of ``reps`` calls of ``fn``."""
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def client_cpu() -> float:
    """CPU seconds (user + system) of this process, all its threads."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def server_cpu(pids: Iterable[int]) -> float:
    """CPU seconds (user + system, with reaped children) of the server processes ``pids``."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # a process that ended: its time is gone with it
        fields = stat[stat.rindex(")") + 2 :].split()
        # Fields 14-17 of proc(5): utime, stime, cutime, cstime (index 0 here is field 3).
        total += sum(int(x) for x in fields[11:15])
    return total / _TICK


@dataclass
class Sample:
    """One timed repetition."""

    seconds: float
    client_cpu: float
    server_cpu: float


@dataclass
class Timer:
    """Filled in when the ``measure`` block ends."""

    sample: Sample | None = None


@contextmanager
def measure(pids: Callable[[], Iterable[int]]) -> Iterator[Timer]:
    """Time the block: wall seconds, this process's CPU, the CPU of ``pids()``."""
    timer = Timer()
    server_pids = list(pids())
    s0, c0, t0 = server_cpu(server_pids), client_cpu(), time.perf_counter()
    yield timer
    t1, c1, s1 = time.perf_counter(), client_cpu(), server_cpu(server_pids)
    timer.sample = Sample(t1 - t0, c1 - c0, s1 - s0)


@dataclass
class Row:
    """One contender in one scenario: its repetitions and what each moved."""

    scenario: str
    contender: str
    role: Role
    samples: list[Sample] = field(default_factory=list)
    nbytes: int = 0
    requests: int = 0
    note: str = ""
    unit: str = "req/s"
    """What ``requests`` counts, per second (requests, or objects for clearing and listing)."""
    extra: dict[str, str] = field(default_factory=dict)
    failed: str = ""
    compare: bool = True
    """Whether ratios of times against other rows of the scenario mean anything."""

    @property
    def seconds(self) -> float:
        return statistics.median(s.seconds for s in self.samples)

    @property
    def client_cpu(self) -> float:
        return statistics.median(s.client_cpu for s in self.samples)

    @property
    def server_cpu(self) -> float:
        return statistics.median(s.server_cpu for s in self.samples)

    @property
    def mib_s(self) -> float | None:
        return self.nbytes / MiB / self.seconds if self.nbytes and self.samples else None

    @property
    def req_s(self) -> float | None:
        return self.requests / self.seconds if self.requests and self.samples else None

    @property
    def cpu_ms_per_request(self) -> float | None:
        return 1000 * self.client_cpu / self.requests if self.requests and self.samples else None

    @property
    def ok(self) -> bool:
        return not self.failed


def attempt(name: str, rows: list[Row], log: Callable[[str], None], fn: Callable[[], None]) -> None:
    """Run ``fn``; a failure marks ``rows`` failed (with the error) instead of ending the run."""
    try:
        fn()
    except Exception as e:
        message = f"{type(e).__name__}: {e}".splitlines()[0][:160]
        log(f"  ! {name} failed: {message}")
        log("".join(traceback.format_exception(e)[-3:]).rstrip())
        for row in rows:
            row.failed = message


def run_rounds(
    rows: Mapping[str, list[Row]],
    warm_up: Callable[[str], object],
    timed: Callable[[str, int], list[Sample]],
    *,
    reps: int,
    log: Callable[[str], None],
) -> None:
    """Warm each contender up, then ``reps`` timed rounds, interleaved round by round so that
    a change in the machine's load hits all contenders alike, the order rotated each round:
    none always runs right after the same other one (whose writes the server may still be
    flushing). ``timed(name, rep)`` returns one sample per row of ``rows[name]``; a contender
    that fails is left out from then on."""
    for name, its_rows in rows.items():
        attempt(name, its_rows, log, partial(warm_up, name))
    names = list(rows)
    for rep in range(reps):
        turn = rep % len(names)
        for name in names[turn:] + names[:turn]:
            its_rows = rows[name]
            if not any(r.failed for r in its_rows):
                attempt(name, its_rows, log, partial(_record, its_rows, timed, name, rep))


def _record(
    rows: list[Row], timed: Callable[[str, int], list[Sample]], name: str, rep: int
) -> None:
    for row, sample in zip(rows, timed(name, rep), strict=True):
        row.samples.append(sample)
