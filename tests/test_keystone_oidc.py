"""Keystone federated with the OIDC issuer (docs/keystone.md): the OIDC access token only in a
token file, re-read before every Keystone login, for xarray, long writes, dask workers, and the
same token file opening Swift (via Keystone) and S3 (via STS) in one script."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import distributed
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from fixtures_swift import memory_dir

from zarrstores.auth import (
    ConfigurationError,
    KeystoneAuth,
    SwiftAuthError,
    TokenExpiredError,
    swift_auth,
)
from zarrstores.devserver.oidc import OIDCIssuer
from zarrstores.devserver.s3 import S3Server
from zarrstores.devserver.swift import SwiftServer
from zarrstores.swift import SwiftStore

pytestmark = [
    pytest.mark.filterwarnings("ignore:Consolidated metadata:UserWarning"),
    pytest.mark.filterwarnings("ignore:Port 8787 is already in use:UserWarning"),
]

# Keystone tokens of the dedicated server end after this long: a job of a few times this
# lives through several Keystone logins.
KEYSTONE_TOKEN_LIFE = 12
# The token file is rewritten this often with tokens valid for TOKEN_LIFE: a login that did
# not read the file again would send an expired token.
TOKEN_EVERY, TOKEN_LIFE = 3.0, 8.0


def dataset(times: int) -> xr.Dataset:
    rng = np.random.default_rng(16)
    return xr.Dataset(
        {"tas": (("time", "lat", "lon"), rng.normal(280, 5, (times, 4, 8)))},
        coords={"time": pd.date_range("2000-01-01", periods=times, freq="D")},
    )


@pytest.fixture(scope="module")
def keystone_short(
    tmp_path_factory: pytest.TempPathFactory, oidc_issuer: OIDCIssuer
) -> Iterator[SwiftServer]:
    """Swift with a Keystone federated with the issuer, whose tokens last 12 s."""
    with (
        memory_dir(tmp_path_factory, "swift-oidc") as base,
        SwiftServer(
            base / "swift", keystone=True, oidc_issuer=oidc_issuer, token_life=KEYSTONE_TOKEN_LIFE
        ) as server,
    ):
        yield server


def oidc_env(server: SwiftServer, token_file: Path) -> dict[str, str]:
    return {**server.os_env("oidc"), "BEARER_TOKEN_FILE": str(token_file)}


def test_xarray_with_the_token_only_in_bearer_token_file(
    swift_server: SwiftServer,
    token_file: Path,
    swift_container: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = oidc_env(swift_server, token_file)
    assert "OS_ACCESS_TOKEN" not in env and "OS_PASSWORD" not in env
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    local = dataset(6)
    url = f"swift://{swift_container}/oidc.zarr"
    local.chunk({"time": 2}).to_zarr(url, mode="w")
    xr.testing.assert_identical(xr.open_zarr(url).compute(), local)
    identity = swift_auth().identity()
    assert (identity.user, identity.user_domain) == ("tester", "oidc-users")
    assert (identity.project, identity.federated) == ("test", True)
    assert identity.project_id == swift_server.keystone_project_id


def test_long_write_while_the_token_file_is_rewritten_across_keystone_expiries(
    keystone_short: SwiftServer, oidc_issuer: OIDCIssuer, tmp_path: Path, swift_container: str
) -> None:
    token_file = tmp_path / "token"
    with oidc_issuer.refresh_token_file(token_file, every=TOKEN_EVERY, expires_in=TOKEN_LIFE) as r:
        auth = swift_auth(env=oidc_env(keystone_short, token_file))
        store = SwiftStore(swift_container, "long.zarr", {"auth": auth})
        local = dataset(1)
        local.to_zarr(store, mode="w")
        started, steps = time.monotonic(), 1
        # Appends until Keystone's token has ended three times (and the first OIDC tokens
        # long before): every append must succeed.
        while time.monotonic() - started < 3.5 * KEYSTONE_TOKEN_LIFE:
            step = dataset(steps + 1).isel(time=[steps])
            step.to_zarr(store, append_dim="time")
            local = xr.concat([local, step], dim="time")
            steps += 1
            time.sleep(0.5)
        rewrites = r.count
    assert rewrites >= 3 * KEYSTONE_TOKEN_LIFE / TOKEN_EVERY
    assert auth.exchanges >= 4  # a login per Keystone token, each with the file's token then
    xr.testing.assert_identical(xr.open_zarr(store).compute(), local)


def test_rejected_keystone_token_logs_in_again_with_the_new_token(
    swift_server: SwiftServer, oidc_issuer: OIDCIssuer, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    oidc_issuer.write_token(token_file, expires_in=60)
    auth = swift_auth(env=oidc_env(swift_server, token_file))
    first = auth.get()
    oidc_issuer.write_token(token_file, expires_in=-10)  # what an agent left behind
    with pytest.raises(TokenExpiredError, match=str(token_file)):
        auth.refresh_after_failure(first)
    oidc_issuer.write_token(token_file, expires_in=60)
    fresh = auth.refresh_after_failure(first)
    assert fresh.token != first.token and auth.exchanges == 2


def _dask_block(block: xr.Dataset, seconds: float) -> xr.Dataset:
    time.sleep(seconds)
    return block


def _logins(store: SwiftStore) -> int:
    return store.client.auth.exchanges


def _work_spans(tasks: list[dict]) -> dict[str, float]:
    """Per worker: seconds from the end of its first task to the end of its last."""
    ends: dict[str, list[float]] = {}
    for task in tasks:
        stops = [s["stop"] for s in task["startstops"] if s["action"] == "compute"]
        ends.setdefault(task["worker"], []).extend(stops)
    return {w: max(e) - min(e) for w, e in ends.items() if e}


def test_dask_workers_keep_writing_as_the_token_file_is_rewritten(
    keystone_short: SwiftServer, oidc_issuer: OIDCIssuer, tmp_path: Path, swift_container: str
) -> None:
    token_file = tmp_path / "token"
    local = dataset(64)  # 64 blocks of 1.5 s on 4 threads: > 24 s, two Keystone tokens' life
    with (
        oidc_issuer.refresh_token_file(token_file, every=TOKEN_EVERY, expires_in=TOKEN_LIFE),
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        auth = swift_auth(env=oidc_env(keystone_short, token_file))
        store = SwiftStore(swift_container, "dask.zarr", {"auth": auth})
        started = time.monotonic()
        with distributed.get_task_stream(client) as stream:
            local.chunk({"time": 1}).map_blocks(
                _dask_block, kwargs={"seconds": 1.5}, template=local.chunk({"time": 1})
            ).to_zarr(store, mode="w")
        elapsed = time.monotonic() - started
        logins = client.run(_logins, store)
    assert {t["status"] for t in stream.data} == {"OK"}, "a task failed"
    assert elapsed > 2 * KEYSTONE_TOKEN_LIFE
    # Each worker logs in itself at its first write, and again when it still writes after that
    # token ended; a worker that got its first task late (a loaded machine) may not have.
    spans = _work_spans(stream.data)
    assert set(spans) == set(logins), "a worker ran no task"
    long_lived = [w for w, span in spans.items() if span > KEYSTONE_TOKEN_LIFE + 2]
    assert long_lived, spans  # the job outlived two tokens: some worker wrote through one
    assert all(logins[w] >= 2 for w in long_lived), (logins, spans)
    assert all(n >= 1 for n in logins.values()), logins
    xr.testing.assert_identical(xr.open_zarr(store).compute(), local)


SCRIPT = """
import numpy as np, xarray as xr
import zarrstores  # swift:// is ours even where swiftspec is installed too
ds = xr.Dataset({"t": ("x", np.arange(5.0))})
ds.to_zarr("swift://CONTAINER/both.zarr", mode="w")
ds.to_zarr("minio://BUCKET/both.zarr", mode="w")
assert xr.open_zarr("swift://CONTAINER/both.zarr").t.sum() == 10
assert xr.open_zarr("minio://BUCKET/both.zarr").t.sum() == 10
print("both written")
"""


def test_one_token_file_opens_swift_via_keystone_and_s3_via_sts(
    swift_server: SwiftServer,
    s3_server: S3Server,
    token_file: Path,
    bucket: str,
    swift_container: str,
    tmp_path: Path,
) -> None:
    env = {
        **oidc_env(swift_server, token_file),
        "AWS_ENDPOINT_URL": s3_server.endpoint,
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
    }
    script = SCRIPT.replace("CONTAINER", swift_container).replace("BUCKET", bucket)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "both written"
    secrets = {"OS_PASSWORD", "OS_ACCESS_TOKEN", "AWS_SECRET_ACCESS_KEY", "OS_AUTH_TOKEN"}
    assert not secrets & set(env)


@pytest.mark.parametrize(
    ("change", "error", "named"),
    [
        ({"OS_IDENTITY_PROVIDER": "no-such-idp"}, ConfigurationError, "'no-such-idp'"),
        ({"OS_PROTOCOL": "saml2"}, ConfigurationError, "protocol 'saml2'"),
    ],
)
def test_wrong_identity_provider_or_protocol_is_named(
    swift_server: SwiftServer, token_file: Path, change: dict, error: type, named: str
) -> None:
    auth = swift_auth(env={**oidc_env(swift_server, token_file), **change})
    with pytest.raises(error, match=named) as e:
        auth.get()
    first = str(e.value).splitlines()[0]
    assert len(first) < 200 and ("OS_IDENTITY_PROVIDER" in first or "OS_PROTOCOL" in first)


def test_token_keystone_does_not_accept_is_refused_with_what_to_check(
    swift_server: SwiftServer, oidc_issuer: OIDCIssuer, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token = oidc_issuer.write_token(token_file, aud="another-service")
    with pytest.raises(SwiftAuthError, match=r"refused the federated login \(401") as e:
        KeystoneAuth(
            swift_server.keystone_url,
            auth_type="v3oidcaccesstoken",
            identity_provider="local-oidc",
            protocol="openid",
            project_name="test",
            project_domain_name="Default",
            access_token_file=token_file,
        ).get()
    assert str(token_file) in str(e.value) and token not in str(e.value)


# -- the command line ------------------------------------------------------------------------


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), **env}
    return subprocess.run(
        [sys.executable, "-m", "zarrstores.cli", *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=120,
    )


def test_token_command_shows_the_keystone_identity_the_token_maps_to(
    swift_server: SwiftServer, token_file: Path
) -> None:
    result = cli("token", env=oidc_env(swift_server, token_file))
    assert result.returncode == 0, result.stderr
    assert "subject: tester" in result.stdout
    assert "keystone_user: tester (domain oidc-users" in result.stdout
    project = swift_server.keystone_project_id
    assert f"keystone_project: test (domain Default, id {project})" in result.stdout
    assert token_file.read_text().strip() not in result.stdout + result.stderr
    wrong = {**oidc_env(swift_server, token_file), "OS_IDENTITY_PROVIDER": "elsewhere"}
    result = cli("token", env=wrong)
    assert result.returncode == 2 and "'elsewhere'" in result.stderr.splitlines()[0]


@pytest.mark.parametrize("kind", ["password", "application_credential", "oidc"])
def test_env_swift_prints_what_the_swift_and_openstack_clis_use(
    swift_server: SwiftServer, token_file: Path, swift_container: str, kind: str
) -> None:
    from test_cli import exports_of, swift_cli

    env = {**swift_server.os_env(kind), "BEARER_TOKEN_FILE": str(token_file)}
    result = cli("env", "swift", env=env)
    assert result.returncode == 0, result.stderr
    exports = exports_of(result.stdout)
    if kind == "application_credential":  # its tokens cannot make new ones: the credential
        assert exports["OS_AUTH_TYPE"] == "v3applicationcredential"
        assert exports["OS_APPLICATION_CREDENTIAL_ID"] == env["OS_APPLICATION_CREDENTIAL_ID"]
    else:
        assert exports["OS_AUTH_TYPE"] == "v3token"
        assert exports["OS_TOKEN"] == exports["OS_AUTH_TOKEN"]
        assert exports["OS_PROJECT_ID"] == swift_server.keystone_project_id
    assert swift_cli("post", swift_container, env=exports).returncode == 0
    assert swift_cli("stat", swift_container, env=exports).returncode == 0
    # what the openstack CLI does with them: a v3token login, read from OS_* by keystoneauth1
    swift_only = ("OS_STORAGE_URL", "OS_AUTH_TOKEN")
    for_openstack = {k: v for k, v in exports.items() if k not in swift_only}
    auth = swift_auth(env=for_openstack)
    assert isinstance(auth, KeystoneAuth) and auth.auth_type == exports["OS_AUTH_TYPE"]
    assert auth.get().storage_url == exports["OS_STORAGE_URL"]


def test_serve_prints_the_oidc_keystone_variables_commented(tmp_path: Path) -> None:
    from test_cli import exports_of, serving

    with serving(tmp_path, "--no-s3", wait=180) as served:
        head, _, oidc = served.env.partition("# Keystone with the OIDC token of BEARER_TOKEN_FILE")
        assert "OS_AUTH_TYPE" not in exports_of(head.split("# Keystone v3")[0])
        lines = [line[2:] for line in oidc.splitlines() if line.startswith("# export ")]
        exports = exports_of("\n".join(lines))
        exports["BEARER_TOKEN_FILE"] = exports_of(head)["BEARER_TOKEN_FILE"]
        assert exports["OS_AUTH_TYPE"] == "v3oidcaccesstoken"
        result = cli("token", env=exports)
        assert result.returncode == 0, result.stderr
        assert "keystone_project: test (domain Default" in result.stdout


def test_no_oidc_or_keystone_token_in_debug_logs(
    swift_server: SwiftServer, token_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    auth = swift_auth(env=oidc_env(swift_server, token_file))
    keystone_token = auth.get().token.reveal()
    auth.refresh_after_failure(auth.get())
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "POST" in logged or "auth/tokens" in logged  # keystoneauth1 did log its requests
    for secret in (token_file.read_text().strip(), keystone_token):
        assert secret not in logged
        assert secret not in repr(auth) + str(auth)
