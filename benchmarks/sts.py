"""STS exchanges during continuous reads: ours (``STSCredentials`` in ``MinioStore``) against
botocore's web-identity provider (``AssumeRoleWithWebIdentityCredentialFetcher`` behind
``DeferredRefreshableCredentials``, as ``AssumeRoleWithWebIdentityProvider`` builds it).

With 900 s credentials a window of seconds shows botocore's rate directly (its refresh windows,
15 and 10 minutes, cover the whole lifetime: every request asks STS), but not when ours
refresh: for that, a second server caps every session at 10 s, which runs credential lifetimes
90x faster (our refresh windows are fractions of the lifetime, so the pattern is the same).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import zarr

from ._arrays import close_store, zarr_config
from ._measure import Row, measure
from ._servers import BenchServers

LIFETIME = 900
SHORT_SESSION = 10
_CHUNKS = 16


def _seed(servers: BenchServers, max_session: str) -> tuple[str, Any]:
    """A bucket with a 16-chunk array (written with the admin keys); (bucket, server)."""
    from zarrstores.auth import StaticS3Credentials
    from zarrstores.minio import MinioStore

    server = servers.s3_server(max_session)
    bucket = servers.new_bucket(server)
    admin = StaticS3Credentials(server.admin_access_key, server.admin_secret_key)
    store = MinioStore(bucket, endpoint_url=server.endpoint, credentials=admin)
    arr = zarr.create_array(store, name="a", shape=(_CHUNKS * 1024,), chunks=(1024,), dtype="f4")
    arr[:] = np.arange(_CHUNKS * 1024, dtype="f4")
    close_store(store)
    return bucket, server


def _ours(servers: BenchServers, max_session: str, seconds: float) -> tuple[int, list[float], Any]:
    """Read the array over and over through MinioStore for ``seconds``; (reads, exchange
    times, CPU sample)."""
    from zarrstores.minio import MinioStore

    bucket, server = _seed(servers, max_session)
    store = MinioStore(
        bucket, endpoint_url=server.endpoint, token=servers.oidc_token(), duration=LIFETIME
    )
    reads, seen, times = 0, 0, []
    with zarr_config(), measure(lambda: server.pids) as m:
        start = time.monotonic()
        arr = zarr.open_array(store, path="a", mode="r")
        while (now := time.monotonic() - start) < seconds:
            arr[:]
            reads += _CHUNKS
            if store.credentials.exchanges != seen:
                times += [now] * (store.credentials.exchanges - seen)
                seen = store.credentials.exchanges
    close_store(store)
    return reads, times, m.sample


def _botocore(
    servers: BenchServers, max_session: str, seconds: float
) -> tuple[int, list[float], Any]:
    """The same reads, one after the other, with botocore's web-identity credentials."""
    import botocore.session
    from botocore.config import Config
    from botocore.credentials import (
        AssumeRoleWithWebIdentityCredentialFetcher,
        CredentialProvider,
        DeferredRefreshableCredentials,
    )

    bucket, server = _seed(servers, max_session)
    session = botocore.session.get_session()
    times: list[float] = []
    start = time.monotonic()

    def count(**_: Any) -> None:
        times.append(time.monotonic() - start)

    session.register("before-call.sts.AssumeRoleWithWebIdentity", count)
    token = servers.oidc_token()
    fetcher = AssumeRoleWithWebIdentityCredentialFetcher(
        functools.partial(
            session.create_client, endpoint_url=server.endpoint, region_name=server.region
        ),
        lambda: token,
        server.readwrite_role_arn,
        extra_args={"DurationSeconds": LIFETIME, "RoleSessionName": "bench"},
    )
    credentials = DeferredRefreshableCredentials(
        refresh_using=fetcher.fetch_credentials, method="assume-role-with-web-identity"
    )

    class _WebIdentity(CredentialProvider):
        METHOD = "assume-role-with-web-identity"

        def load(self) -> Any:
            return credentials

    session.get_component("credential_provider").insert_before("env", _WebIdentity())
    s3 = session.create_client(
        "s3",
        endpoint_url=server.endpoint,
        region_name=server.region,
        config=Config(s3={"addressing_style": "path"}),
    )
    keys = [f"a/c/{i}" for i in range(_CHUNKS)]
    reads = 0
    with measure(lambda: server.pids) as m:
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            s3.get_object(Bucket=bucket, Key=keys[reads % _CHUNKS])["Body"].read()
            reads += 1
    s3.close()
    return reads, times, m.sample


def _per_lifetime(times: list[float], lifetime: float) -> int:
    """The most exchanges after one exchange within that credential's lifetime."""
    return max((sum(1 for u in times if t < u < t + lifetime) for t in times), default=0)


def _per_hour(times: list[float], scale: float) -> str:
    """Exchanges per hour of real 900 s credentials, from the mean interval between them
    (``scale``: real seconds per second here); "-" when the window saw no refresh."""
    if len(times) < 2:
        return "-"
    interval = (times[-1] - times[0]) / (len(times) - 1)
    return f"{3600 / max(interval * scale, 1e-3):,.0f}"


def run(servers: BenchServers, *, seconds: float, log: Callable[[str], None]) -> list[Row]:
    rows = []
    short = f"{SHORT_SESSION}s"
    plans: list[tuple[str, str, Callable[..., tuple[int, list[float], Any]], str, float]] = [
        ("MinioStore (STSCredentials)", "ours", _ours, "12h", LIFETIME),
        ("MinioStore (STSCredentials)", "ours", _ours, short, SHORT_SESSION),
        ("botocore web-identity provider", "alt", _botocore, "12h", LIFETIME),
    ]
    for name, role, fn, max_session, lifetime in plans:
        label = f"{lifetime:.0f} s credentials" + (
            f" (sessions capped at {SHORT_SESSION} s: time x{LIFETIME // SHORT_SESSION})"
            if lifetime != LIFETIME
            else ""
        )
        row = Row(
            "STS exchanges during continuous reads",
            f"{name}, {label}",
            role,  # type: ignore[arg-type]
        )
        # A 900 s window shows botocore's steady rate (and ours: no exchange) in seconds; the
        # capped sessions need several lifetimes to show when ours refresh.
        window = seconds if lifetime != LIFETIME else max(2.0, seconds / 2.5)
        row.compare = False
        rows.append(row)
        try:
            reads, times, sample = fn(servers, max_session, window)
        except Exception as e:
            row.failed = f"{type(e).__name__}: {e}".splitlines()[0][:160]
            log(f"  ! sts {row.contender} failed: {row.failed}")
            continue
        row.samples.append(sample)
        row.requests = reads
        row.unit = "reads/s"
        n = len(times)
        within = _per_lifetime(times, lifetime)
        row.extra["exchanges"] = str(n)
        row.extra["max per lifetime"] = (
            f">= {within}" if window < lifetime and within else str(within)
        )
        row.extra["per hour (900 s creds)"] = _per_hour(times, LIFETIME / lifetime)
        log(f"  sts {row.contender}: {reads} reads, {n} exchanges, {within} per lifetime")
    return rows
