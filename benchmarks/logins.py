"""``python -m benchmarks.logins [--reps 7] [--output FILE]``: what opening one more dataset
costs when each open makes a new store, as a notebook opening dataset after dataset does.

Starts its own Swift with Keystone, writes the 50-variable consolidated dataset of
``benchmarks.meta``, then times ``xr.open_zarr`` with a new store object every repetition
(median, after one untimed warm-up): SwiftStore and the ``swift://`` URL against
zarr-swiftstore, with Keystone password options and with tempauth. A counting proxy in front
of Keystone and of tempauth's ``/auth/v1.0`` counts each contender's logins. Prints the tables
and writes them to ``benchmarks/results/logins.md``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import xarray as xr

from zarrstores.devserver.swift import SwiftServer

from ._arrays import zarr_config
from ._measure import Row, Sample, measure, run_rounds
from ._proxy import CountingProxy
from ._table import tables
from .meta import VARIABLES, _open_store, dataset
from .run import machine, versions

RESULTS = Path(__file__).parent / "results" / "logins.md"
PACKAGES = ("zarrstores", "zarr", "xarray", "aiohttp", "keystoneauth1", "python-swiftclient")
PACKAGES += ("python-keystoneclient", "zarr-swiftstore", "swift", "keystone")
LOGINS = {"keystone": "POST /v3/auth/tokens", "tempauth": "GET /auth/v1.0"}
NOTE_URL = (
    "`skip_instance_cache=True`: a new filesystem each time, or fsspec's instance cache would "
    "hand back the first one (and its login) whatever the login sharing does"
)


class Plan:
    """One login kind: the counting proxy in front of its login, the container, the options."""

    def __init__(self, kind: str, server: SwiftServer) -> None:
        self.kind = kind
        if kind == "keystone":
            # Only the login goes through the proxy: the catalog's Swift endpoint stays direct.
            self.proxy = CountingProxy(server.keystone_url.split("/")[2])
            env = server.os_env("password")
            auth_url = f"http://127.0.0.1:{self.proxy.port}/v3"
            names = ("username", "password", "project_name")
            names += ("user_domain_name", "project_domain_name")
            self.ours: dict[str, Any] = {"auth_url": auth_url}
            self.ours |= {n: env[f"OS_{n.upper()}"] for n in names}
            os_options = {n: self.ours[n] for n in names[2:]}
            self.theirs: dict[str, Any] = {"authurl": auth_url, "user": env["OS_USERNAME"]}
            self.theirs |= {"key": env["OS_PASSWORD"], "auth_version": "3"}
            self.theirs["os_options"] = os_options
        else:
            # tempauth answers with a storage URL on the host it was asked: the proxy's. The
            # storage URL is given, so that only the login goes through the proxy here too.
            self.proxy = CountingProxy(server.proxy_url.removeprefix("http://"))
            self.ours = {
                "authurl": f"http://127.0.0.1:{self.proxy.port}/auth/v1.0",
                "user": "test:tester",
                "key": server.users["test:tester"],
                "os_options": {"object_storage_url": server.storage_url()},
            }
            self.theirs = dict(self.ours)
        self.container = f"logins-{uuid.uuid4().hex[:8]}"

    def write(self) -> None:
        """Write the dataset with a login of its own (an ``auth`` object given is never
        shared): the contenders' warm-ups log in."""
        from zarrstores.auth import swift_auth

        options = {"auth": swift_auth(**self.options())}
        dataset().to_zarr(f"swift://{self.container}/ds", storage_options=options)

    def options(self, **more: Any) -> dict[str, Any]:
        """Our storage options, a fresh copy (nothing shared between stores but the login)."""
        return _copy(self.ours) | more

    def openers(self) -> list[tuple[str, str, Callable[[], xr.Dataset]]]:
        from zarrswift import SwiftStore as ZarrSwiftStore

        from zarrstores.swift import SwiftStore

        c = self.container

        return [
            (
                "SwiftStore",
                "ours",
                lambda: _open_store(SwiftStore(c, "ds", storage_options=self.options())),
            ),
            (
                "swift:// URL",
                "ours",
                lambda: xr.open_zarr(
                    f"swift://{c}/ds", storage_options=self.options(skip_instance_cache=True)
                ),
            ),
            (
                "zarr-swiftstore",
                "alt",
                lambda: _open_store(ZarrSwiftStore(c, "ds", storage_options=_copy(self.theirs))),
            ),
        ]


def _copy(options: dict[str, Any]) -> dict[str, Any]:
    """A copy of storage options, nested dicts (``os_options``) included."""
    return {k: dict(v) if isinstance(v, dict) else v for k, v in options.items()}


def run_plan(
    plan: Plan, pids: Callable[[], list[int]], reps: int, log: Callable[[str], None]
) -> list[Row]:
    """Warm-up, then ``reps`` interleaved rounds; each row's logins in its warm-up and over
    its timed rounds."""
    login = "Keystone password" if plan.kind == "keystone" else "tempauth"
    scenario = f"open_zarr with a new store, {login}, consolidated, {VARIABLES} variables"
    contenders = plan.openers()
    openers = {name: open_ for name, _, open_ in contenders}
    rows = {name: [Row(scenario, name, role)] for name, role, _ in contenders}  # type: ignore[arg-type]
    rows["swift:// URL"][0].note = NOTE_URL
    warm_up, logins, requests = (dict.fromkeys(rows, 0) for _ in range(3))

    def opened(name: str) -> int:
        """Open the dataset with a new store; the logins it took."""
        plan.proxy.reset()
        ds = openers[name]()
        if len(ds.data_vars) != VARIABLES:
            raise AssertionError(f"{len(ds.data_vars)} variables opened")
        return sum(line == LOGINS[plan.kind] for line in plan.proxy.lines)

    def warmed_up(name: str) -> None:
        warm_up[name] = opened(name)

    def timed(name: str, rep: int) -> list[Sample]:
        with measure(pids) as timer:
            logins[name] += opened(name)
        requests[name] += plan.proxy.total
        assert timer.sample is not None
        return [timer.sample]

    run_rounds(rows, warmed_up, timed, reps=reps, log=log)
    for name, (row,) in rows.items():
        row.extra["logins"] = str(logins[name])
        row.extra["auth requests"] = str(requests[name])
        row.extra["warm-up logins"] = str(warm_up[name])
        log(f"  {plan.kind} {name}: {logins[name]} logins ({warm_up[name]} in the warm-up)")
    return [row for (row,) in rows.values()]


def report(rows: list[Row], *, reps: int, seconds: float, loads: tuple[str, str]) -> str:
    command = "python -m benchmarks.logins" + (f" --reps {reps}" if reps != 7 else "")
    return "\n".join(
        [
            "# Opening one more store: logins",
            "",
            f"- Command: `{command}` ({seconds / 60:.1f} min)",
            f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
            f"- Machine: {machine()}",
            f"- Load average (1 min) at start / end: {loads[0]} / {loads[1]}",
            f"- Versions: {versions(PACKAGES)}",
            "- Loopback: one Swift (a tempauth proxy and a Keystone proxy on the same storage) "
            "and Keystone from PyPI, all on this machine. Each repetition opens the dataset "
            "with a new store object (a new filesystem for the URL); zarrstores' stores opened "
            "with the same login options share one login. Contenders take turns round by "
            "round, the order rotated each round, after one untimed warm-up each. The dataset "
            "is written with a login of its own (an `auth` object given is never shared), so "
            "that a warm-up logs in. Each opened dataset is dropped; zarrstores keeps the last "
            "16 logins (and STS key sets) it handed out alive after their stores are gone.",
            "- `logins`: the `POST /v3/auth/tokens` (Keystone) or `GET /auth/v1.0` (tempauth) "
            "requests a contender sent in its timed repetitions (`warm-up logins`: in its "
            "warm-up), counted by a proxy in this process in front of Keystone, or in front of "
            "tempauth for the login only (the storage URL is given, so Swift requests go "
            "direct); `auth requests`: every request through that proxy (Keystone's version "
            "discovery too). The proxy's time is in every contender's time; client CPU: this "
            "process, proxy included; server CPU: the Swift and Keystone processes. "
            "`SwiftStore ÷ this` = this time / SwiftStore's time (medians).",
            "",
            tables(rows),
            "",
        ]
    )


def _load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.logins", description=__doc__)
    parser.add_argument("--reps", type=int, default=7, help="timed repetitions per contender")
    parser.add_argument("--output", type=Path, default=RESULTS, help="markdown file")
    args = parser.parse_args(argv)

    warnings.simplefilter("ignore")  # consolidated metadata in zarr v3, deprecations
    logging.getLogger("zarrstores").setLevel(logging.ERROR)
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    start, load0 = time.monotonic(), _load()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - start:6.1f} s] {message}", file=sys.stderr, flush=True)

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="zarrstores-logins-") as tmp:
        log(f"starting Swift and Keystone in {tmp}; load average {load0}")
        server = SwiftServer(Path(tmp) / "swift", keystone=True)
        server.start()
        plans: list[Plan] = []
        try:
            with zarr_config():
                for kind in ("keystone", "tempauth"):
                    log(f"{kind}: {args.reps} rounds")
                    plans.append(plan := Plan(kind, server))
                    plan.write()
                    rows += run_plan(plan, lambda: server.pids, args.reps, log)
            text = report(
                rows, reps=args.reps, seconds=time.monotonic() - start, loads=(load0, _load())
            )
        finally:
            for plan in plans:
                plan.proxy.stop()
            log("stopping the servers")
            server.stop()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.output.with_suffix(".tmp")
    tmp_out.write_text(text)
    tmp_out.replace(args.output)
    print(text)
    log(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
