"""The demo of ``make demo``: a dataset written to Swift and to S3, read back, shared, unshared,
on local servers it starts itself (no Docker, no accounts); exits 0 only if every check passed.
Each step prints what a user would type to do the same."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import xarray as xr

CONTAINER = BUCKET = "demo"
PREFIX = "climate.zarr"


class Demo:
    """Prints numbered steps and counts the checks that failed."""

    def __init__(self) -> None:
        self.step = 0
        self.failed: list[str] = []

    def say(self, text: str) -> None:
        self.step += 1
        print(f"\n[{self.step}] {text}", flush=True)

    def check(self, what: str, ok: Callable[[], bool]) -> None:
        try:
            passed, detail = bool(ok()), ""
        except Exception as e:  # the demo reports every failure and goes on
            passed, detail = False, f" ({type(e).__name__}: {e})"
        print(f"    {'ok  ' if passed else 'FAIL'} {what}{detail}", flush=True)
        if not passed:
            self.failed.append(what)

    def expect_error(self, what: str, action: Callable[[], object], error: type) -> None:
        try:
            action()
        except error as e:
            print(f"    ok   {what}: {type(e).__name__}: {str(e).splitlines()[0]}", flush=True)
            return
        except Exception as e:
            print(f"    FAIL {what}: unexpected {type(e).__name__}: {e}", flush=True)
        else:
            print(f"    FAIL {what}: no error", flush=True)
        self.failed.append(what)


def make_dataset() -> xr.Dataset:
    """A small climate-like dataset: three float32 variables on (time, lat, lon)."""
    rng = np.random.default_rng(0)
    shape = (48, 90, 180)
    coords = {
        "time": pd.date_range("2026-01-01", periods=shape[0], freq="D"),
        "lat": np.linspace(-89, 89, shape[1]),
        "lon": np.linspace(-179, 179, shape[2]),
    }
    data = {
        name: (("time", "lat", "lon"), (base + rng.standard_normal(shape)).astype("float32"))
        for name, base in (("tas", 288.0), ("pr", 3.0), ("huss", 0.01))
    }
    return xr.Dataset(data, coords=coords, attrs={"title": "zarrstores demo"})


def write_with_progress(ds: xr.Dataset, target: object, label: str) -> None:
    """Metadata first, then the data in time blocks (region writes) under a progress bar."""
    import zarr
    from tqdm import tqdm

    step = 8
    ds.to_zarr(target, mode="w", compute=False, consolidated=False)
    for start in tqdm(range(0, ds.sizes["time"], step), desc=label, unit="block"):
        block = ds.isel(time=slice(start, start + step)).drop_vars(["lat", "lon"])
        block.to_zarr(target, region={"time": slice(start, start + step)}, consolidated=False)
    zarr.consolidate_metadata(target)


def run(demo: Demo, workdir: Path, *, rgw: bool = False) -> None:
    """Every step of the demo (``rgw``: both on one Ceph RGW)."""
    from . import MinioStore, SwiftStore, is_public, make_private, make_public
    from .cli import local_servers, parser

    # Ceph RGW keeps Swift containers and S3 buckets under one set of names.
    bucket = f"{BUCKET}-s3" if rgw else BUCKET
    swift_url, s3_url = f"swift://{CONTAINER}/{PREFIX}", f"minio://{bucket}/{PREFIX}"
    servers = "Ceph RGW (Swift and S3 with STS)" if rgw else "OpenStack Swift, S3 with STS"
    demo.say(f"Starting local servers: {servers}, an OIDC issuer")
    started = time.monotonic()
    # What `zarrstores serve` starts; like sts-wire, it rewrites the token file every few seconds.
    argv = ["serve", "--dir", str(workdir), "--no-keystone", "--refresh", "5"]
    args = parser().parse_args(argv + (["--no-swift", "--no-s3", "--rgw"] if rgw else []))
    with local_servers(args) as (env, _):
        os.environ.update(env)
        print(f"    ready in {time.monotonic() - started:.1f} s; exported:")
        for name in env:
            print(f"      {name}={'***' if name == 'ST_KEY' else env[name]}")
        ds = make_dataset()
        print(
            f"    dataset: {dict(ds.sizes)}, {len(ds.data_vars)} variables, "
            f"{ds.nbytes / 2**20:.1f} MiB"
        )

        def reads_back(target: object, **storage_options: object) -> Callable[[], bool]:
            options = storage_options or None
            return lambda: xr.open_zarr(target, storage_options=options).load().identical(ds)

        demo.say(f"Swift (tempauth from ST_*): ds.to_zarr(SwiftStore({CONTAINER!r}, {PREFIX!r}))")
        swift = SwiftStore(CONTAINER, PREFIX)
        write_with_progress(ds, swift, "swift")
        demo.check("read back from Swift equals the dataset", reads_back(swift))
        demo.check(f"the same by URL: xr.open_zarr({swift_url!r})", reads_back(swift_url))

        demo.say(
            f"S3 (OIDC token from $BEARER_TOKEN_FILE exchanged via STS): "
            f"ds.to_zarr(MinioStore({bucket!r}, {PREFIX!r}))"
        )
        print(f"    $ mc mb local/{bucket}   # here: fsspec.filesystem('minio').mkdir({bucket!r})")
        fsspec.filesystem("minio").mkdir(bucket)
        s3 = MinioStore(bucket, PREFIX)
        write_with_progress(ds, s3, "s3")
        demo.check("read back from S3 equals the dataset", reads_back(s3))
        demo.check(f"the same by URL: xr.open_zarr({s3_url!r})", reads_back(s3_url))
        print(f"    STS exchanges so far: {s3.credentials.exchanges}")

        swift_anon = {"anon": True, "storage_url": swift.client.auth.get().storage_url}
        s3_anon = {"anon": True, "endpoint_url": env["AWS_ENDPOINT_URL"]}
        both = (
            ("Swift container", swift, swift_url, swift_anon),
            ("S3 prefix", s3, s3_url, s3_anon),
        )
        demo.say("Sharing: make_public(...) on both, then read anonymously")
        for what, store, url, anon in both:
            make_public(store)
            demo.check(f"{what} is public", partial(is_public, store))
            demo.check(
                f"anonymous xr.open_zarr('{url[:8]}...', storage_options={{'anon': True, ...}})",
                reads_back(url, **anon),
            )
        demo.say("make_private(...) on both: anonymous reads now fail with a clear error")
        for what, store, url, anon in both:
            make_private(store)
            demo.check(f"{what} is private", lambda: not is_public(store))  # noqa: B023 (called at once)
            demo.expect_error(
                f"anonymous {what} read",
                partial(xr.open_zarr, url, storage_options=anon),
                PermissionError,  # AuthError is one
            )

        demo.say("The same objects from the command line")
        swift_cli = str(Path(sys.executable).parent / "swift")
        listing = subprocess.run(
            [swift_cli, "list", CONTAINER, "--prefix", f"{PREFIX}/tas/"],
            capture_output=True,
            text=True,
        )
        print(f"    $ swift list {CONTAINER} --prefix {PREFIX}/tas/")
        for line in listing.stdout.splitlines()[:4]:
            print(f"      {line}")
        demo.check(
            "`swift list` shows the chunks under <prefix>/<key>",
            lambda: f"{PREFIX}/tas/zarr.json" in listing.stdout.split(),
        )
        print("    With mc (or aws, rclone), take temporary keys from the same token:")
        print('      $ eval "$(zarrstores env s3 --alias local)"')
        print(f"      $ mc ls local/{bucket}/{PREFIX}/")
        print(f"      $ aws s3 ls s3://{bucket}/{PREFIX}/")

        demo.say("Stopping the servers")


def main(argv: list[str] | None = None) -> int:
    """Run the demo (``--rgw``: on a local Ceph RGW); 0 only if every check passed."""
    rgw = "--rgw" in (sys.argv[1:] if argv is None else argv)
    # zarr notes at every consolidation that v3 has no consolidated metadata in its spec yet
    warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
    demo = Demo()
    with tempfile.TemporaryDirectory(prefix="zarrstores-demo-") as tmp:
        try:
            run(demo, Path(tmp), rgw=rgw)
        except Exception as e:
            print(f"\nFAIL the demo stopped: {type(e).__name__}: {e}", flush=True)
            demo.failed.append("unexpected error")
    if demo.failed:
        print(f"\n{len(demo.failed)} check(s) failed: {', '.join(demo.failed)}")
        return 1
    print("\nAll checks passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
