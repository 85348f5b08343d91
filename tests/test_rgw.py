"""What Ceph RGW does differently from OpenStack Swift and MinIO, each quirk met through the
public API on the session's RGW (``rgw_server``); the backend tests in ``test_stores.py`` and
``test_reliability_*.py`` run on it as well (``rgw-swift``, ``rgw-s3``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import xarray as xr
import zarr
from fsspec.asyn import sync

from zarrstores.auth import STSCredentials, STSError, TempAuth, s3_credentials
from zarrstores.devserver.oidc import OIDCIssuer
from zarrstores.devserver.rgw import RGWServer
from zarrstores.devserver.swift import SwiftServer
from zarrstores.minio import MinioFileSystem, MinioStore
from zarrstores.minio import make_public as make_bucket_public
from zarrstores.swift import SwiftFileSystem, SwiftStore, make_private, make_public

MiB = 1 << 20


def name() -> str:
    return f"rgw-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def auth(rgw_server: RGWServer) -> TempAuth:
    return TempAuth(rgw_server.auth_url, "test:tester", rgw_server.users["test:tester"])


@pytest.fixture(scope="module")
def fs(auth: TempAuth) -> SwiftFileSystem:
    return SwiftFileSystem(auth=auth, skip_instance_cache=True)


def sts(server: RGWServer, issuer: OIDCIssuer, **changes: Any) -> STSCredentials:
    options = {"role_arn": server.readwrite_role_arn, **changes}
    return STSCredentials(server.endpoint, issuer.mint(), **options)


# -- Swift API --------------------------------------------------------------------------------


def test_v1_auth_answering_204_gives_the_account_less_storage_url(
    rgw_server: RGWServer, auth: TempAuth
) -> None:
    assert requests.get(rgw_server.auth_url, headers={
        "X-Auth-User": "test:tester", "X-Auth-Key": "testing"}).status_code == 204  # fmt: skip
    assert auth.get().storage_url == f"{rgw_server.endpoint}/swift/v1"
    store = SwiftStore(name(), "p", {"auth": auth})
    store["k"] = b"v"
    assert store["k"] == b"v"


def test_capabilities_come_from_swift_info(fs: SwiftFileSystem) -> None:
    """``/info`` is 404 on RGW; ``/swift/info`` holds the limits (5 GiB objects)."""
    caps = sync(fs.loop, fs.client.capabilities)
    assert caps.max_file_size == 5 * 1024**3


def test_listing_pages_until_an_empty_one(fs: SwiftFileSystem) -> None:
    """RGW answers at most 1,000 entries to ``limit=5000`` although ``/swift/info`` says
    10,000: a short page is not the last one."""
    c = name()
    fs.mkdir(c)
    n = 1_005
    fs.pipe({f"{c}/many/{i:05d}": b"" for i in range(n)})

    async def listed(limit: int) -> list[str]:
        return [entry["name"] async for entry in fs.client.list(c, "many/", limit=limit)]

    assert sync(fs.loop, listed, 5000) == [f"many/{i:05d}" for i in range(n)]
    assert sync(fs.loop, listed, 1002) == [f"many/{i:05d}" for i in range(1002)]
    assert fs.find(f"{c}/many") == [f"{c}/many/{i:05d}" for i in range(n)]
    assert len(SwiftStore(c, "many", {"auth": fs.client.auth}).keys()) == n


def test_container_put_answered_409_is_an_existing_container(
    fs: SwiftFileSystem, auth: TempAuth
) -> None:
    """RGW answers 409 (Swift: 202) to a PUT of an existing container whose ACL differs."""
    store = SwiftStore(name(), "d.zarr", {"auth": auth})
    store["k"] = b"1"
    make_public(store)
    fs.mkdir(store.container, exist_ok=True)
    SwiftStore(store.container, "d.zarr", {"auth": auth})["k2"] = b"2"
    assert store.keys() == ["k", "k2"]


def test_short_container_name_is_a_clear_error(fs: SwiftFileSystem) -> None:
    with pytest.raises(OSError, match=r"400 .*container names of 3-255 characters"):
        fs.mkdir("ab")


def test_container_name_of_another_account_is_a_clear_error(rgw_server: RGWServer) -> None:
    """Container names are shared between RGW's accounts: taken is not ours."""
    other = TempAuth(rgw_server.auth_url, "test2:tester2", rgw_server.users["test2:tester2"])
    taken = name()
    SwiftStore(taken, "", {"auth": other})["k"] = b"theirs"
    fs = SwiftFileSystem(
        authurl=rgw_server.auth_url, user="test:tester", key="testing", skip_instance_cache=True
    )
    with pytest.raises(OSError, match="the name is taken by another account"):
        fs.mkdir(taken)


def test_slo_listed_with_its_whole_size(fs: SwiftFileSystem, auth: TempAuth) -> None:
    """RGW lists an SLO with its manifest's size and the MD5 of nothing: the listing says the
    object's size, so that reads through ``open`` get every byte."""
    c = name()
    fs.mkdir(c)
    big = SwiftFileSystem(auth=auth, segment_size=256 * 1024, skip_instance_cache=True)
    data = os.urandom(MiB + 12345)
    big.pipe_file(f"{c}/big.bin", data)
    [entry] = fs.ls(c, detail=True)
    assert entry["size"] == len(data) and entry["slo"]
    assert fs.info(f"{c}/big.bin")["size"] == len(data)
    with fs.open(f"{c}/big.bin", "rb") as f:
        assert f.read() == data
    assert fs.cat_file(f"{c}/big.bin", start=-100) == data[-100:]
    fs.rm(f"{c}/big.bin")
    assert not fs.exists(f"{c}/big.bin")
    assert fs.find(f"{c}_segments") == []


def test_anonymous_reads_of_a_public_container_until_it_is_private(
    rgw_server: RGWServer, auth: TempAuth
) -> None:
    """RGW redirects an anonymous ``GET container`` to ``container/`` without its query, and
    ignores ``X-Remove-Container-Read``."""
    store = SwiftStore(name(), "pub.zarr", {"auth": auth})
    xr.Dataset({"t": (("x",), np.arange(6.0))}).to_zarr(store, mode="w", consolidated=False)
    make_public(store)
    anon = {"anon": True, "storage_url": rgw_server.storage_url()}
    opened = xr.open_zarr(f"swift://{store.container}/pub.zarr", storage_options=anon,
                          consolidated=False)  # fmt: skip
    assert opened.t.values.tolist() == [0, 1, 2, 3, 4, 5]
    make_private(store)
    fs = SwiftFileSystem(**anon, skip_instance_cache=True)
    with pytest.raises(PermissionError):
        fs.cat(f"{store.container}/pub.zarr/zarr.json")


def test_account_in_url_mode(oidc_issuer: OIDCIssuer, tmp_path: Path) -> None:
    """With ``rgw_swift_account_in_url = true`` the storage URL names the account."""
    with RGWServer(dir=tmp_path / "c", account_in_url=True) as server:
        pids = server.pids
        auth = TempAuth(server.auth_url, "test:tester", "testing")
        assert auth.get().storage_url == f"{server.endpoint}/swift/v1/AUTH_test"
        store = SwiftStore(name(), "p", {"auth": auth})
        zarr.create_array(store, name="a", shape=(4,), chunks=(2,), dtype="i4")[:] = 3
        assert zarr.open_array(store, path="a")[:].tolist() == [3, 3, 3, 3]
        assert store.listdir() == ["a", "zarr.json"]
    assert len(pids) == 3 and not any(_alive(pid) for pid in pids)  # stopped, in order


# -- S3 API and STS ---------------------------------------------------------------------------


def test_makedirs_sends_no_location_constraint(
    rgw_server: RGWServer, oidc_issuer: OIDCIssuer
) -> None:
    """RGW's zonegroup is ``default``: the default region must not become a constraint."""
    credentials = sts(rgw_server, oidc_issuer)
    s3 = MinioFileSystem(
        endpoint_url=rgw_server.endpoint, credentials=credentials, skip_instance_cache=True
    )
    bucket = name()
    s3.makedirs(bucket)
    s3.pipe(f"{bucket}/k", b"v")
    assert rgw_server.admin_client().get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"


def test_public_prefix_reads_anonymously_and_missing_keys_read_as_missing(
    rgw_server: RGWServer, oidc_issuer: OIDCIssuer
) -> None:
    """RGW honours a prefix-scoped policy, and, as AWS, answers 403 (not 404) for a missing
    key to readers who may not list the whole bucket: a listing tells the two apart."""
    bucket = name()
    rgw_server.admin_client().create_bucket(Bucket=bucket)
    options = {"endpoint_url": rgw_server.endpoint, "credentials": sts(rgw_server, oidc_issuer)}
    ds = xr.Dataset({"t": (("x",), np.arange(4.0))})
    ds.to_zarr(MinioStore(bucket, "pub/a.zarr", **options), mode="w", zarr_format=2)
    MinioStore(bucket, "private", **options)["k"] = b"secret"
    make_bucket_public(f"minio://{bucket}/pub", options)
    assert requests.get(f"{rgw_server.endpoint}/{bucket}/pub/missing").status_code == 403
    anon = {"endpoint_url": rgw_server.endpoint, "anon": True}
    opened = xr.open_zarr(f"minio://{bucket}/pub/a.zarr", storage_options=anon)
    assert opened.t.values.tolist() == [0, 1, 2, 3]
    public = MinioStore(bucket, "pub", endpoint_url=rgw_server.endpoint, anon=True)
    assert "missing" not in public
    with pytest.raises(KeyError):
        public["missing"]
    private = MinioStore(bucket, "private", endpoint_url=rgw_server.endpoint, anon=True)
    for key in ("k", "missing"):  # a refusal stays a refusal, never "missing"
        with pytest.raises(PermissionError, match="not public") as refused:
            private[key]
        assert "wrong" not in str(refused.value)  # anonymous: no keys to be wrong


def test_sts_needs_a_role_and_says_so(rgw_server: RGWServer, oidc_issuer: OIDCIssuer) -> None:
    with pytest.raises(STSError, match=r"AccessDenied \(.*pass role_arn= or set AWS_ROLE_ARN"):
        sts(rgw_server, oidc_issuer, role_arn=None).get()
    with pytest.raises(STSError, match="the role was refused: check role_arn"):
        sts(rgw_server, oidc_issuer, role_arn="arn:aws:iam:::role/nope").get()
    with pytest.raises(STSError, match="the role was refused"):
        STSCredentials(rgw_server.endpoint, oidc_issuer.mint(aud="other"),
                       role_arn=rgw_server.readwrite_role_arn).get()  # fmt: skip


def test_role_arn_from_the_environment(
    rgw_server: RGWServer, oidc_issuer: OIDCIssuer, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    oidc_issuer.write_token(token_file)
    env = rgw_server.sts_env(token_file)
    credentials, endpoint = s3_credentials(env=env)
    assert endpoint == rgw_server.endpoint
    assert credentials.get().session_token is not None
    readonly = s3_credentials(env={**env, "AWS_ROLE_ARN": rgw_server.readonly_role_arn})[0]
    bucket = name()
    rgw_server.admin_client().create_bucket(Bucket=bucket)
    with pytest.raises(PermissionError, match="read-only access"):
        MinioStore(bucket, "", endpoint_url=endpoint, credentials=readonly)["k"] = b"v"


# -- the launcher -----------------------------------------------------------------------------

_KILLED = """
import sys
from zarrstores.devserver.rgw import RGWServer
from zarrstores.devserver.swift import SwiftServer
server = RGWServer(dir=sys.argv[1]).start()
print(" ".join(map(str, server.pids)), flush=True)
sys.stdin.read()
"""


def test_killed_owner_leaves_no_daemon(tmp_path: Path) -> None:
    """mon, OSD and radosgw die with the process that started them (SIGKILL: no clean-up)."""
    # (in tmp_path: the killed owner cannot remove a directory of its own)
    owner = subprocess.Popen([sys.executable, "-c", _KILLED, str(tmp_path / "c")],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert owner.stdout is not None
    pids = [int(pid) for pid in owner.stdout.readline().split()]
    assert len(pids) == 3 and all(_alive(pid) for pid in pids)
    owner.kill()
    owner.wait()
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in pids)


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


# -- Keystone in front of RGW's Swift API -------------------------------------------------------


RGW_REGION = "RegionRGW"


def test_keystone_catalog_leads_os_variables_to_rgw(
    swift_server: SwiftServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RGW validates Keystone tokens and Keystone's catalog names it (an ``object-store``
    endpoint in a region of its own, beside OpenStack Swift's): a user with only ``OS_*``
    variables, password or application credential, reaches RGW's Swift API at the account
    ``AUTH_<project id>``; the same user in the other region reaches OpenStack Swift."""
    keystone = swift_server.keystone
    assert keystone is not None
    with RGWServer(dir=tmp_path / "k", keystone_url=swift_server.keystone_url) as server:
        endpoint = keystone.add_object_store(server.catalog_url, RGW_REGION)
        try:
            rgw_url = server.storage_url(swift_server.keystone_project_id)

            def only(env: dict[str, str]) -> None:
                for var in [k for k in os.environ if k.startswith(("OS_", "ST_"))]:
                    monkeypatch.delenv(var)
                for var, value in env.items():
                    monkeypatch.setenv(var, value)

            only({**swift_server.os_env("password"), "OS_REGION_NAME": RGW_REGION})
            store = SwiftStore(name(), "k.zarr")
            zarr.create_array(store, name="a", shape=(4,), chunks=(2,), dtype="i4")[:] = 5
            assert store.client.auth.get().storage_url == rgw_url
            fs = SwiftFileSystem(skip_instance_cache=True)
            assert fs.ls(f"{store.container}/k.zarr/a/c", detail=False) == [
                f"{store.container}/k.zarr/a/c/0", f"{store.container}/k.zarr/a/c/1"]  # fmt: skip

            only({**swift_server.os_env("application_credential"), "OS_REGION_NAME": RGW_REGION})
            again = SwiftStore(store.container, "k.zarr", read_only=True)
            assert again.client.auth.get().storage_url == rgw_url
            assert zarr.open_array(again, path="a")[:].tolist() == [5, 5, 5, 5]

            only(swift_server.os_env("password"))  # RegionOne: OpenStack Swift, not RGW
            elsewhere = SwiftStore(store.container, "k.zarr", read_only=True)
            assert not elsewhere.client.auth.get().storage_url.startswith(server.endpoint)
            assert "a/zarr.json" not in elsewhere

            wrong = {**swift_server.os_env("password"), "OS_PASSWORD": "not-the-password"}
            only({**wrong, "OS_REGION_NAME": RGW_REGION})
            with pytest.raises(PermissionError, match="Keystone"):
                SwiftStore(store.container, "k.zarr")["a/zarr.json"]
        finally:
            keystone.remove_endpoint(endpoint)
