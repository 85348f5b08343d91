"""Faults on the real servers, each test on both backends: credentials that expire during a long
zarr write, the server going away in the middle of one, 503s, slow answers and resets, a body
corrupted on the way, a token file rewritten under 64 concurrent readers, 64 concurrent
writers. Every test reads back what it wrote with an independent client: nothing may be lost
or silently wrong. Each records its figures for the README (``scripts/reliability_figures.py``).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import zarr
from _figures import Figures, figures_fixture  # noqa: F401 (fixture)
from backends import Backend, backend_fixture, make_backend  # noqa: F401 (fixture)

from zarrstores._retry import RetryPolicy
from zarrstores._store import ObjectStore
from zarrstores.auth import S3Credentials, STSCredentials
from zarrstores.devserver.oidc import OIDCIssuer
from zarrstores.devserver.rgw import RGWServer
from zarrstores.devserver.s3 import S3Server
from zarrstores.minio import MinioStore

COLS = 64
PATIENT = RetryPolicy(attempts=10, base=0.1, cap=1.0, timeout=10.0)
"""Rides out a server restart (about 10 s of retries)."""


def rows(start: int, stop: int) -> np.ndarray:
    """The values of rows ``start:stop``: every cell different, none equal to the fill (-1)."""
    return np.arange(start * COLS, stop * COLS, dtype="f8").reshape(-1, COLS)


def new_array(store: ObjectStore, n_rows: int) -> zarr.Array:
    """An array of ``n_rows`` one-row chunks (one object per row) at ``x``."""
    return zarr.create_array(
        store, name="x", shape=(n_rows, COLS), chunks=(1, COLS), dtype="f8", fill_value=-1.0
    )


def check_rows(
    backend: Backend, prefix: str, n_rows: int, *, missing_ok: bool = False
) -> tuple[int, int]:
    """Read rows ``0:n_rows`` of ``<prefix>/x`` with a fresh store and compare each with what was
    written: (rows equal, rows never written). A row with other values fails the test; a
    row never written only with ``missing_ok``. Also checks that the listing holds exactly the
    chunk objects of the rows found, so an object the listing misses counts as lost."""
    back = zarr.open_array(backend.store(prefix, read_only=True), path="x", mode="r")[:n_rows]
    expected = rows(0, n_rows)
    equal = (back == expected).all(axis=1)
    missing = (back == -1.0).all(axis=1)
    wrong = np.flatnonzero(~equal & ~missing)
    assert not wrong.size, f"rows {wrong[:10].tolist()} hold other values than were written"
    if not missing_ok:
        assert not missing.any(), f"rows {np.flatnonzero(missing)[:10].tolist()} were lost"
    listed = {key for key in backend.raw_keys(f"{prefix}/x/c/")}
    assert listed == {f"{prefix}/x/c/{r}/0" for r in np.flatnonzero(equal)}
    return int(equal.sum()), int(missing.sum())


def retries_logged(caplog: pytest.LogCaptureFixture) -> int:
    """Requests the clients logged as retried (5xx, resets, timeouts)."""
    return sum(
        r.name.startswith("zarrstores") and "retrying" in r.getMessage() for r in caplog.records
    )


# -- credentials expiring during a long write ---------------------------------------------------


class UnannouncedExpiry(STSCredentials):
    """STS credentials whose expiry the client is not told (clock skew, sessions ended early):
    every expiry is met by requests the server refuses, which must be refreshed and resent."""

    def _exchange(self) -> S3Credentials:
        return replace(super()._exchange(), expires_at=None)


@dataclass
class Expiring:
    """A store whose credentials stop working again and again while it writes."""

    backend: Backend
    store: ObjectStore
    tick: Callable[[], None]
    """Called between writes (Swift: revokes every token once a second; S3: sessions end
    by themselves)."""
    how: str

    def survived(self) -> int:
        """Expiries lived through: every credential fetch after the first replaced ones that
        the server had stopped accepting."""
        return self.backend.exchanges(self.store) - 1


@pytest.fixture(params=["swift", "s3", "rgw-s3"])
def expiring(
    request: pytest.FixtureRequest, oidc_issuer: OIDCIssuer, tmp_path: Path
) -> Iterator[Expiring]:
    if request.param == "rgw-s3":
        rgw = make_backend(request, "rgw-s3")
        gateway: RGWServer = request.getfixturevalue("rgw_server")
        ended = [time.monotonic()]

        def end_sessions() -> None:
            if time.monotonic() - ended[0] > 1.0:
                gateway.revoke_sessions()
                ended[0] = time.monotonic()

        how = "STS sessions ended every second (Ceph RGW: AccessDenied, no expiry code)"
        yield Expiring(rgw, rgw.store("long"), end_sessions, how)
        rgw.close()
        return
    if request.param == "swift":
        swift = make_backend(request, "swift")
        last = [time.monotonic()]

        def revoke() -> None:
            if time.monotonic() - last[0] > 1.0:
                swift.server.invalidate_tokens()  # type: ignore[attr-defined]
                last[0] = time.monotonic()

        yield Expiring(swift, swift.store("long"), revoke, "tempauth tokens revoked every second")
        swift.close()
        return
    s3 = make_backend(request, "s3", s3="s3_short")
    server: S3Server = request.getfixturevalue("s3_short")
    token_file = tmp_path / "token"
    # The OIDC token file is rewritten (truncate, pause, write) every 2 s, as sts-wire does.
    with oidc_issuer.refresh_token_file(token_file, every=2.0):
        credentials = UnannouncedExpiry(server.endpoint, token_file=token_file)
        store = MinioStore(
            s3.container, "long", endpoint_url=server.endpoint, credentials=credentials
        )
        yield Expiring(s3, store, lambda: None, f"STS sessions ending every {server.max_session}")
    s3.close()


def test_credentials_expiring_again_and_again_during_a_long_write(
    expiring: Expiring, figures: Figures, caplog: pytest.LogCaptureFixture
) -> None:
    """A zarr write of 16 chunks at a time goes on across >= 5 expiries: no write fails, and
    every chunk reads back equal."""
    capacity = 16384
    array = new_array(expiring.store, capacity)
    written = 0
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="zarrstores"):
        while expiring.survived() < 5:
            assert written < capacity and time.monotonic() - started < 150, expiring.survived()
            array[written : written + 16] = rows(written, written + 16)  # 16 PUTs in flight
            written += 16
            expiring.tick()
            time.sleep(0.1)
    refused = sum("rejected session credentials" in r.getMessage() for r in caplog.records)
    verified, _ = check_rows(expiring.backend, "long", written)
    assert verified == written
    figures.add(
        section="expiry",
        backend=expiring.backend.name,
        how=expiring.how,
        expiries_survived=expiring.survived(),
        chunks_written=written,
        failed_writes=0,
        objects_verified=verified,
        objects_lost=written - verified,
        refused_requests_resent=refused,
        seconds=round(time.monotonic() - started, 1),
    )


# -- the server going away in the middle of a write --------------------------------------------


def test_server_outage_in_the_middle_of_a_write(
    backend: Backend, figures: Figures, caplog: pytest.LogCaptureFixture
) -> None:
    """Swift's proxy is killed and restarted (S3: the server's address refuses connections and
    drops those in flight for a second). The write completes through retries or fails loudly;
    no chunk is silently wrong; running the same write again completes it."""
    n_rows = 480
    array = new_array(backend.store("outage", faulty=True, retry=PATIENT), n_rows)
    errors: list[BaseException] = []
    under_way = threading.Event()

    def write() -> None:
        try:
            for start in range(0, n_rows, 8):
                array[start : start + 8] = rows(start, start + 8)
                if start >= 64:
                    under_way.set()
                time.sleep(0.03)  # a write that lasts a few seconds
        except BaseException as e:
            errors.append(e)
        finally:
            under_way.set()

    writer = threading.Thread(target=write)
    with caplog.at_level(logging.INFO, logger="zarrstores"):
        writer.start()
        assert under_way.wait(60)
        assert writer.is_alive(), "the write ended before the outage"
        backend.outage()
        time.sleep(1.0)
        backend.restore()  # from this thread: servers die with the thread that started them
        writer.join(120)
    assert not writer.is_alive()
    if errors:  # loudly: an error that says what failed, never a missing-key or a fill value
        assert isinstance(errors[0], OSError), errors[0]
        assert not isinstance(errors[0], FileNotFoundError | KeyError)
    first_ok, first_missing = check_rows(backend, "outage", n_rows, missing_ok=bool(errors))
    again = zarr.open_array(backend.store("outage", faulty=True, retry=PATIENT), path="x")
    again[:] = rows(0, n_rows)
    verified, _ = check_rows(backend, "outage", n_rows)
    figures.add(
        section="outage",
        backend=backend.name,
        how="proxy killed and restarted" if backend.name == "swift" else "connections refused",
        chunks_written=n_rows,
        first_run="failed loudly" if errors else "completed",
        retries=retries_logged(caplog),
        objects_wrong=0,
        objects_verified=verified,
        objects_lost=n_rows - verified,
        first_run_missing=first_missing,
    )
    assert first_ok + first_missing == n_rows


# -- 503, slow answers, resets -----------------------------------------------------------------


def backoff_bounds(policy: RetryPolicy, per_attempt: float) -> tuple[float, float]:
    """Least and most time ``policy.attempts`` attempts may take, each ``per_attempt`` s."""
    pauses = [min(policy.cap, policy.base * 2**n) for n in range(policy.attempts - 1)]
    least = 0.5 * sum(pauses) + policy.attempts * per_attempt
    return least, 1.5 * sum(pauses) + policy.attempts * (per_attempt + 0.5) + 2.0


def test_faults_are_retried_with_backoff_then_fail_clearly(
    backend: Backend, figures: Figures, caplog: pytest.LogCaptureFixture
) -> None:
    policy = RetryPolicy(attempts=4, base=0.1, cap=0.4, timeout=1.0)
    store = backend.store("faults", faulty=True, retry=policy)
    proxy = backend.proxy
    store["k0"] = b"0"
    injected = sum(proxy.injected.values())
    # Transient faults: each request is retried and every operation succeeds.
    proxy.inject("status", status=503, count=2, method="PUT", path_contains="faults/k1")
    proxy.inject("status", status=500, count=1, method="PUT", path_contains="faults/k2")
    proxy.inject("reset", count=2, method="GET", path_contains="faults/k1")
    proxy.inject("delay", delay=3.0, count=1, method="GET", path_contains="faults/k2")  # > timeout
    with caplog.at_level(logging.INFO, logger="zarrstores"):
        for i in range(1, 4):
            store[f"k{i}"] = bytes([i]) * 1000
        for i in range(1, 4):
            assert store[f"k{i}"] == bytes([i]) * 1000
        # The credential endpoint too (tempauth, STS): a new login rides out two 503s.
        proxy.inject("status", status=503, count=2, **backend.auth_request)
        assert backend.store("faults", faulty=True, retry=policy)["k1"] == bytes([1]) * 1000
    recovered = sum(proxy.injected.values()) - injected
    assert recovered == 8
    assert retries_logged(caplog) >= 7  # (aiohttp resends after one of the resets itself)

    # Persistent faults: bounded retries with backoff, then an error that says what failed.
    hang = backend.store("faults", faulty=True, retry=replace(policy, timeout=0.5))
    cases = [
        ("status", {"status": 503}, store, "503", 0.0),
        ("reset", {}, store, "after 4 attempt", 0.0),
        ("delay", {"delay": 30.0}, hang, "after 4 attempt", 0.5),
    ]
    for kind, options, target, message, per_attempt in cases:
        proxy.clear()
        seen = proxy.requests
        proxy.inject(kind, count=0, method="GET", path_contains="faults/k2", **options)  # type: ignore[arg-type]
        started = time.monotonic()
        with pytest.raises(OSError, match=message) as error:
            target["k2"]
        took = time.monotonic() - started
        assert not isinstance(error.value, FileNotFoundError)
        attempts = sum("faults/k2" in path for _, path, _ in proxy.seen[seen:])
        # (aiohttp itself sends an idempotent request once more when its connection drops)
        most_attempts = 2 * policy.attempts if kind == "reset" else policy.attempts
        assert policy.attempts <= attempts <= most_attempts, (kind, attempts)
        least, most = backoff_bounds(policy, per_attempt)
        assert least <= took <= most, (kind, took)
    # The credential endpoint failing every time: four attempts, then a clear error.
    proxy.clear()
    proxy.inject("status", status=503, count=0, **backend.auth_request)
    started = time.monotonic()
    with pytest.raises(ConnectionError, match=r"answered 503.*gave up after 4 attempts"):
        backend.store("faults", faulty=True, retry=policy)["k2"]
    assert time.monotonic() - started < 10
    proxy.clear()
    assert backend.raw_get("faults/k2") == bytes([2]) * 1000  # nothing changed by the failures
    figures.add(
        section="faults",
        backend=backend.name,
        faults_injected=sum(proxy.injected.values()) - injected,
        faults_recovered=recovered,
        retries=retries_logged(caplog),
        persistent_faults_failing_clearly=len(cases) + 1,
        objects_lost=0,
    )


# -- a body corrupted on the way ----------------------------------------------------------------


def test_a_body_corrupted_on_the_way_is_refused_and_changes_nothing(
    backend: Backend, figures: Figures
) -> None:
    """One byte flipped in the middle of a PUT body: Swift refuses it by its ETag (MD5), S3 by
    its SHA-256 checksum. The store and the filesystem raise; what was stored stays as it was."""
    store = backend.store("corrupt", faulty=True)
    fs = backend.fs(faulty=True)
    store["k"] = b"original" * 1000
    array = new_array(store, 4)
    array[:] = rows(0, 4)
    before = backend.snapshot()
    already = backend.proxy.injected["corrupt"]
    backend.proxy.inject("corrupt", count=0, method="PUT")
    refused = 0
    with pytest.raises(OSError, match="corrupted on the way"):
        store["k"] = b"replaced" * 1000
    refused += 1
    with pytest.raises(OSError, match="corrupted on the way"):
        store["new"] = b"new" * 1000
    refused += 1
    with pytest.raises(OSError):
        array[:] = rows(4, 8)
    refused += 1
    with pytest.raises(OSError, match=r"corrupted on the way|BadDigest"):
        fs.pipe_file(f"{backend.container}/corrupt/k", b"through fsspec" * 100)
    refused += 1
    corrupted = backend.proxy.injected["corrupt"] - already
    backend.proxy.clear()
    assert backend.snapshot() == before
    store["k"] = b"replaced" * 1000  # the same write without the fault
    assert backend.raw_get("corrupt/k") == b"replaced" * 1000
    figures.add(
        section="corrupt",
        backend=backend.name,
        faults_injected=corrupted,
        corrupted_writes_refused=refused,
        corrupted_objects_stored=0,
        objects_lost=0,
    )


# -- the token file rewritten under 64 concurrent readers --------------------------------------


def test_token_file_rewritten_while_64_readers_exchange_it(
    s3_server: S3Server, oidc_issuer: OIDCIssuer, tmp_path: Path, figures: Figures
) -> None:
    """S3 only (Swift has no OIDC token file): 64 threads, each like a worker process with
    STS credentials of its own, read the token file for every exchange and then read chunks,
    while the file is truncated and rewritten every 30 ms (empty for 20 ms of them)."""
    bucket = f"rel-{uuid.uuid4().hex[:12]}"
    s3_server.admin_client().create_bucket(Bucket=bucket)
    writer = MinioStore(bucket, "data", endpoint_url=s3_server.endpoint, token=oidc_issuer.mint())
    new_array(writer, 64)[:] = rows(0, 64)
    token_file = tmp_path / "token"
    rounds = 3
    with oidc_issuer.refresh_token_file(token_file, every=0.03, pause=0.02) as refresher:
        start = threading.Barrier(64)

        def reader(row: int) -> int:
            start.wait()
            exchanges = 0
            for _ in range(rounds):
                credentials = STSCredentials(s3_server.endpoint, token_file=token_file)
                store = MinioStore(
                    bucket,
                    "data",
                    endpoint_url=s3_server.endpoint,
                    credentials=credentials,
                    read_only=True,
                )
                got = zarr.open_array(store, path="x", mode="r")[row]
                assert np.array_equal(got, rows(row, row + 1)[0])
                exchanges += credentials.exchanges
            return exchanges

        with ThreadPoolExecutor(64) as pool:
            exchanges = sum(pool.map(reader, range(64)))
        rewrites = refresher.count
    s3_server.admin_client().delete_bucket(Bucket=bucket)
    assert exchanges == 64 * rounds
    assert rewrites >= 5
    figures.add(
        section="token_file",
        backend="s3",
        concurrent_readers=64,
        token_file_rewrites=rewrites,
        token_reads=exchanges,
        failed_reads=0,
        objects_verified=64 * rounds,
    )


# -- 64 concurrent writers ---------------------------------------------------------------------


def test_64_concurrent_writers_to_one_store_lose_nothing(
    backend: Backend, figures: Figures
) -> None:
    """64 threads write 8 chunks each of one array through one store, and all of them the same
    key: every chunk arrives, and the shared key holds one writer's value whole."""
    store = backend.store("many")
    writers, per_writer = 64, 8
    new_array(store, writers * per_writer)
    start = threading.Barrier(writers)

    def write(w: int) -> None:
        array = zarr.open_array(store, path="x", mode="r+")
        start.wait()
        for j in range(per_writer):
            r = w * per_writer + j
            array[r] = rows(r, r + 1)[0]
        store["shared"] = bytes([w]) * 4096

    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(write, range(writers)))
    verified, _ = check_rows(backend, "many", writers * per_writer)
    shared = backend.raw_get("many/shared")
    assert shared in {bytes([w]) * 4096 for w in range(writers)}
    figures.add(
        section="concurrency",
        backend=backend.name,
        concurrent_writers=writers,
        writes=writers * per_writer + writers,
        objects_written=writers * per_writer + 1,
        objects_verified=verified + 1,
        objects_lost=writers * per_writer - verified,
    )
