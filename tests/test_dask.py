"""Scale-out with dask.distributed (docs/dask.md): two worker processes write and read with
credentials that keep working, on both backends, and what travels to the workers."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import distributed
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from distributed.protocol.pickle import dumps, loads
from fixtures_s3 import S3_SHORT_SESSION

from zarrstores._store import ObjectStore
from zarrstores.auth import (
    AnonymousS3,
    AnonymousSwift,
    CallableToken,
    EnvToken,
    KeystoneAuth,
    PreAuth,
    StaticS3Credentials,
    STSCredentials,
    TempAuth,
    swift_auth_from_env,
)
from zarrstores.devserver.oidc import OIDCIssuer
from zarrstores.devserver.rgw import RGWServer
from zarrstores.devserver.s3 import S3Server
from zarrstores.devserver.swift import SwiftServer
from zarrstores.minio import MinioFileSystem, MinioStore
from zarrstores.swift import SwiftFileSystem, SwiftStore

pytestmark = [
    pytest.mark.filterwarnings("ignore:Consolidated metadata:UserWarning"),
    # dashboard_address=None still serves health checks, on 8787 when free
    pytest.mark.filterwarnings("ignore:Port 8787 is already in use:UserWarning"),
]


@pytest.fixture(scope="module")
def client() -> Iterator[distributed.Client]:
    """One cluster for the module: 2 worker processes with 2 threads each."""
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def dataset(times: int) -> xr.Dataset:
    rng = np.random.default_rng(9)
    return xr.Dataset(
        {"tas": (("time", "lat", "lon"), rng.normal(280, 5, (times, 4, 8)))},
        coords={"time": pd.date_range("2000-01-01", periods=times, freq="D")},
    )


def slowly(block: xr.Dataset, seconds: float) -> xr.Dataset:
    """A block that takes ``seconds`` to compute, as real work would."""
    time.sleep(seconds)
    return block


def auth_of(store: ObjectStore) -> Any:
    return store.credentials if isinstance(store, MinioStore) else store.client.auth


def exchanges(store: ObjectStore) -> int:
    """STS exchanges / Swift logins of this process's credentials for ``store`` (on a worker,
    every unpickled copy of the store shares one)."""
    return auth_of(store).exchanges


def ran_everywhere_without_failure(tasks: list[dict[str, Any]], client: distributed.Client) -> None:
    assert tasks and {t["status"] for t in tasks} == {"OK"}, "a task failed"
    assert {t["worker"] for t in tasks} == set(client.scheduler_info()["workers"])


# -- one workflow, two backends ----------------------------------------------------------------


@dataclass
class Place:
    """The same location as a store and as a URL with ``storage_options``."""

    store: ObjectStore
    url: str
    storage_options: dict[str, Any]


@pytest.fixture(params=["swift", "minio", "rgw-swift", "rgw-s3"])
def place(request: pytest.FixtureRequest) -> Place:
    if request.param.startswith("rgw"):
        return rgw_place(request)
    if request.param == "swift":
        swift: SwiftServer = request.getfixturevalue("swift_server")
        container = request.getfixturevalue("swift_container")
        keystone = swift_auth_from_env(swift.os_env("password"))
        return Place(
            SwiftStore(container, "ds.zarr", {"auth": keystone}),
            f"swift://{container}/ds.zarr",
            {"authurl": swift.auth_url, "user": "test:tester", "key": "testing"},
        )
    s3: S3Server = request.getfixturevalue("s3_server")
    bucket = request.getfixturevalue("bucket")
    token_file: Path = request.getfixturevalue("token_file")
    return Place(
        MinioStore(bucket, "ds.zarr", endpoint_url=s3.endpoint, token=token_file),
        f"minio://{bucket}/ds.zarr",
        {"endpoint_url": s3.endpoint, "token": str(token_file)},
    )


def rgw_place(request: pytest.FixtureRequest) -> Place:
    """The same on Ceph RGW: Swift with v1 auth, or S3 with STS and a role."""
    rgw: RGWServer = request.getfixturevalue("rgw_server")
    name = f"dask-{uuid.uuid4().hex[:12]}"
    if request.param == "rgw-swift":
        tempauth = {"authurl": rgw.auth_url, "user": "test:tester", "key": "testing"}
        return Place(SwiftStore(name, "ds.zarr", tempauth), f"swift://{name}/ds.zarr", tempauth)
    rgw.admin_client().create_bucket(Bucket=name)
    token_file: Path = request.getfixturevalue("token_file")
    options = {"endpoint_url": rgw.endpoint, "token": str(token_file)}
    options["role_arn"] = rgw.readwrite_role_arn
    return Place(MinioStore(name, "ds.zarr", **options), f"minio://{name}/ds.zarr", options)


@pytest.mark.parametrize("access", ["store", "url"])
def test_to_zarr_and_mean_on_two_worker_processes(
    client: distributed.Client, place: Place, access: str
) -> None:
    local = dataset(48)
    target: Any = place.store if access == "store" else place.url
    options = {} if access == "store" else {"storage_options": place.storage_options}
    with distributed.get_task_stream(client) as stream:
        local.chunk({"time": 1}).to_zarr(target, mode="w", **options)
        mean = xr.open_zarr(target, **options).mean().compute()
    ran_everywhere_without_failure(stream.data, client)
    xr.testing.assert_allclose(mean, local.mean())
    xr.testing.assert_identical(xr.open_zarr(target, **options).compute(), local)


# -- credentials that end while the job runs ---------------------------------------------------


@dataclass
class Job:
    store: ObjectStore
    blocks: int
    seconds_per_block: float
    ending: Callable[[], contextlib.AbstractContextManager[Any]]
    """Ends the store's credentials >= 3 times while the job runs."""
    at_least: float
    """How long the job must last to live through those ends."""
    most: Callable[[float], float]
    """The most renewals a worker may need in a job of that many seconds."""
    stale_store: Callable[[Any], ObjectStore]
    """The same location with only the given (old) credentials, unable to renew them."""


@contextlib.contextmanager
def revoking(swift: SwiftServer, every: float, times: int) -> Iterator[list[float]]:
    """Revoke every Swift token ``times`` times, ``every`` s apart, in a thread."""
    done: list[float] = []
    stop = threading.Event()

    def run() -> None:
        while len(done) < times and not stop.wait(every):
            swift.invalidate_tokens()
            done.append(time.monotonic())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield done
    finally:
        stop.set()
        thread.join()
    assert len(done) == times, "the job ended before every revocation"


@pytest.fixture(params=["swift", "minio"])
def job(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Job]:
    if request.param == "swift":
        swift: SwiftServer = request.getfixturevalue("swift_server")
        container = request.getfixturevalue("swift_container")
        tempauth = {"authurl": swift.auth_url, "user": "test:tester", "key": "testing"}
        yield Job(
            SwiftStore(container, "job.zarr", tempauth),
            blocks=48,
            seconds_per_block=1.0,
            ending=lambda: revoking(swift, every=3.0, times=3),
            at_least=10.0,
            most=lambda elapsed: 3 + 1,
            stale_store=lambda old: SwiftStore(
                container,
                "job.zarr",
                {"preauthurl": old.storage_url, "preauthtoken": old.token.reveal()},
            ),
        )
        return
    s3: S3Server = request.getfixturevalue("s3_short")
    issuer: OIDCIssuer = request.getfixturevalue("oidc_issuer")
    bucket = f"dask-{uuid.uuid4().hex[:12]}"
    s3.admin_client().create_bucket(Bucket=bucket)
    token_file = tmp_path / "token"
    # Rewritten in place every 2 s, as sts-wire keeps it fresh; workers only re-read it.
    with issuer.refresh_token_file(token_file, every=2.0):
        yield Job(
            MinioStore(bucket, "job.zarr", endpoint_url=s3.endpoint, token=token_file),
            blocks=104,
            seconds_per_block=1.0,
            ending=contextlib.nullcontext,  # the server ends every session after 8 s
            at_least=3 * S3_SHORT_SESSION,
            # renewed at ~3/4 of each session, so at most once per half session
            most=lambda elapsed: elapsed / (S3_SHORT_SESSION / 2) + 2,
            stale_store=lambda old: MinioStore(
                bucket,
                "job.zarr",
                endpoint_url=s3.endpoint,
                key=old.access_key,
                secret=old.secret_key.reveal(),
                session_token=old.session_token.reveal(),
            ),
        )
    s3.admin_client().delete_bucket(Bucket=bucket)


def test_credentials_end_three_times_mid_job_and_every_worker_renews_them(
    client: distributed.Client, job: Job
) -> None:
    """Swift tokens revoked three times, or 8 s STS sessions over > 24 s: no failed task, each
    worker renews its credentials itself, once per end (not once per task)."""
    local = dataset(job.blocks)
    old = auth_of(job.store).get()
    before = client.run(exchanges, job.store)
    started = time.monotonic()
    with job.ending(), distributed.get_task_stream(client) as stream:
        local.chunk({"time": 1}).map_blocks(
            slowly, kwargs={"seconds": job.seconds_per_block}, template=local.chunk({"time": 1})
        ).to_zarr(job.store, mode="w")
    elapsed = time.monotonic() - started
    renewed = {w: n - before[w] for w, n in client.run(exchanges, job.store).items()}

    ran_everywhere_without_failure(stream.data, client)
    assert len(stream.data) >= job.blocks
    assert elapsed > job.at_least
    back = xr.open_zarr(job.store)
    xr.testing.assert_allclose(back.mean().compute(), local.mean())
    xr.testing.assert_identical(back.compute(), local)
    for worker, count in renewed.items():
        assert 3 <= count <= job.most(elapsed), (worker, renewed, elapsed)
    with pytest.raises(PermissionError):  # the credentials from before the job really ended
        job.stale_store(old)["zarr.json"]


# -- what travels ------------------------------------------------------------------------------

TOKEN_VALUE = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0cmF2ZWxzIn0.c2lnbmF0dXJl"


def token_from_the_workers_agent() -> str:
    """Stands for a function that reads a token on the worker (never refreshes it there)."""
    return TOKEN_VALUE


def sts(token: Any) -> STSCredentials:
    return STSCredentials("https://s3.example.org", token)


KEYSTONE = "https://keystone.example.org/v3"
AUTH_KINDS: dict[str, tuple[Callable[[], Any], set[str], set[str]]] = {
    # kind: (build, secrets in the pickle, secrets not in it)
    "sts-token-value": (lambda: sts(TOKEN_VALUE), {TOKEN_VALUE}, set()),
    "sts-env-token": (lambda: sts(EnvToken("ZS_TRAVEL_TOKEN")), {"ZS_TRAVEL_TOKEN"}, {TOKEN_VALUE}),
    "sts-callable": (
        lambda: sts(CallableToken(token_from_the_workers_agent)),
        {"token_from_the_workers_agent"},
        {TOKEN_VALUE},
    ),
    "sts-lambda": (lambda: sts(lambda: TOKEN_VALUE), {TOKEN_VALUE}, set()),  # shipped by value
    "s3-static-keys": (
        lambda: StaticS3Credentials("AKEY", "s3-secret-key"),
        {"s3-secret-key"},
        set(),
    ),
    "s3-anonymous": (AnonymousS3, set(), set()),
    "tempauth": (
        lambda: TempAuth("https://s.example.org/auth/v1.0", "a:u", "v1-key"),
        {"v1-key"},
        set(),
    ),
    "keystone-password": (
        lambda: KeystoneAuth(KEYSTONE, username="u", password="ks-password", project_name="p"),
        {"ks-password"},
        set(),
    ),
    "keystone-app-credential": (
        lambda: KeystoneAuth(
            KEYSTONE,
            auth_type="v3applicationcredential",
            application_credential_id="app-id",
            application_credential_secret="app-secret",
        ),
        {"app-id", "app-secret"},
        set(),
    ),
    "keystone-token": (
        lambda: KeystoneAuth(KEYSTONE, auth_type="token", token="ks-token", project_name="p"),
        {"ks-token"},
        set(),
    ),
    "preauth": (
        lambda: PreAuth("https://s.example.org/v1/AUTH_a", "swift-token"),
        {"swift-token"},
        set(),
    ),
    "swift-anonymous": (lambda: AnonymousSwift("https://s.example.org/v1/AUTH_a"), set(), set()),
}


@pytest.mark.parametrize("kind", AUTH_KINDS)
def test_what_travels_with_each_auth_kind(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bytes dask ships to a worker (its own pickler), for the table in docs/dask.md."""
    monkeypatch.setenv("ZS_TRAVEL_TOKEN", TOKEN_VALUE)
    build, travels, stays = AUTH_KINDS[kind]
    shipped = dumps(build())
    for secret in travels:
        assert secret.encode() in shipped, secret
    for secret in stays:
        assert secret.encode() not in shipped, secret
    copy = loads(shipped)
    if isinstance(copy, STSCredentials):
        assert copy.token_source.get() == TOKEN_VALUE  # read where it runs: on the worker


def test_what_travels_with_minio_store_and_filesystem(
    s3_server: S3Server, bucket: str, token_file: Path
) -> None:
    """A store ships its token file's path and its current (short-lived) STS keys, never the
    OIDC token; a ``minio://`` filesystem ships its options and exchanges anew on the worker."""
    oidc = token_file.read_text()
    store = MinioStore(bucket, "t.zarr", endpoint_url=s3_server.endpoint, token=token_file)
    store["k"] = b"v"
    fs = MinioFileSystem(endpoint_url=s3_server.endpoint, token=str(token_file))
    fs.ls(bucket)
    for name, obj, creds in (("store", store, store.credentials), ("fs", fs, fs.credentials)):
        shipped = dumps(obj)
        keys = creds.get()
        assert oidc.encode() not in shipped, name
        assert keys.session_token is not None
        assert (keys.session_token.reveal().encode() in shipped) == (name == "store")
        copy = loads(shipped)
        assert copy.credentials.token_source.path == token_file
    assert loads(dumps(store))["k"] == b"v"


def test_what_travels_with_swift_store_and_filesystem(
    swift_server: SwiftServer, swift_container: str
) -> None:
    """Both ship tempauth's key (a long-lived secret); the store also its current token, the
    ``swift://`` filesystem logs in anew on the worker."""
    options = {"authurl": swift_server.auth_url, "user": "test:tester", "key": "testing"}
    store = SwiftStore(swift_container, "t.zarr", options)
    store["k"] = b"v"
    fs = SwiftFileSystem(**options)
    fs.ls(swift_container)
    for name, obj in (("store", store), ("fs", fs)):
        shipped = dumps(obj)
        token = obj.client.auth.get().token.reveal()
        assert b"testing" in shipped, name
        assert (token.encode() in shipped) == (name == "store"), name
    assert loads(dumps(store))["k"] == b"v"
