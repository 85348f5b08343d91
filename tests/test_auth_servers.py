"""The auth core against the real servers: STS exchange and refresh, every Swift auth kind,
the adapters for other S3 clients, and that no secret leaks into logs or errors."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ClientError
from fixtures_s3 import S3_SHORT_SESSION

from zarrstores.auth import (
    PreAuth,
    STSCredentials,
    STSError,
    SwiftAuthError,
    TempAuth,
    TokenError,
    TokenExpiredError,
    acquire_token,
    aiobotocore_session,
    assume_role_with_web_identity,
    minio_credentials_provider,
    obstore_credential_provider,
    swift_auth,
)


def s3_get(server, creds, bucket: str, key: str) -> requests.Response:
    """A SigV4-signed GET with botocore's signer (independent of our own clients)."""
    import botocore.session
    from botocore.config import Config

    client = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=server.endpoint,
        region_name=server.region,
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key.reveal(),
        aws_session_token=creds.session_token.reveal() if creds.session_token else None,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


# -- STS ------------------------------------------------------------------------------------


def test_token_file_exchanged_for_working_credentials(s3_server, token_file, bucket) -> None:
    s3_server.admin_client().put_object(Bucket=bucket, Key="a", Body=b"hello")
    provider = STSCredentials(s3_server.endpoint, token_file=token_file)
    creds = provider.get()
    assert creds.access_key and creds.session_token and creds.expires_at > time.time()
    assert s3_get(s3_server, creds, bucket, "a") == b"hello"
    assert provider.get() is creds and provider.exchanges == 1


@pytest.mark.parametrize(
    ("mint", "error", "message"),
    [
        ({"bad_signature": True}, STSError, "STS AssumeRoleWithWebIdentity .* failed"),
        ({"expires_in": -60}, TokenExpiredError, "expired at"),
        ({"aud": "someone-else"}, STSError, "failed"),
    ],
)
def test_bad_tokens_give_clear_errors_without_the_token(
    s3_server, oidc_issuer, mint, error, message
) -> None:
    token = oidc_issuer.mint(**mint)
    with pytest.raises(error, match=message) as e:
        STSCredentials(s3_server.endpoint, token).get()
    assert token not in str(e.value)
    assert token.split(".")[1] not in str(e.value)


def test_garbage_token_is_refused_before_sending(s3_server) -> None:
    with pytest.raises(TokenError, match="not a JWT"):
        STSCredentials(s3_server.endpoint, "garbage").get()


def test_server_rejects_an_unsigned_jwt(s3_server, oidc_issuer) -> None:
    header, payload, _ = oidc_issuer.mint().split(".")
    with pytest.raises(STSError) as e:
        assume_role_with_web_identity(s3_server.endpoint, f"{header}.{payload}.AAAA")
    assert e.value.status in (400, 403) and e.value.code


def test_64_concurrent_callers_share_one_exchange(s3_server, token_file) -> None:
    provider = STSCredentials(s3_server.endpoint, token_file=token_file)
    with ThreadPoolExecutor(64) as pool:
        results = list(pool.map(lambda _: provider.get(), range(64)))
    assert provider.exchanges == 1
    assert len({id(c) for c in results}) == 1

    async def many() -> None:
        await asyncio.gather(*(provider.arefresh_after_failure(results[0]) for _ in range(64)))

    asyncio.run(many())
    assert provider.exchanges == 2


def test_refresh_across_three_expiries_with_token_file_rewritten(
    s3_short, oidc_issuer, tmp_path: Path
) -> None:
    """Reads run continuously for > 3 session lengths while the token file is rewritten
    (truncate, then write) under them: every read succeeds. As the backends do, a read the
    server refuses as expired (signed just before expiry, arriving after) refreshes and is
    retried once; at most once per reader and credential set."""
    bucket = "refresh-three"
    s3_short.admin_client().create_bucket(Bucket=bucket)
    s3_short.admin_client().put_object(Bucket=bucket, Key="k", Body=b"v")
    path = tmp_path / "token"
    oidc_issuer.write_token(path)
    provider = STSCredentials(s3_short.endpoint, token_file=path)
    failures: list[BaseException] = []
    reads = retried = 0
    served_by: set[str] = set()  # access keys of the sessions that answered reads
    stop = time.monotonic() + 3.5 * S3_SHORT_SESSION
    lock = threading.Lock()

    def reader() -> None:
        nonlocal reads, retried
        while time.monotonic() < stop:
            try:
                creds = provider.get()
                try:
                    value = s3_get(s3_short, creds, bucket, "k")
                except ClientError as e:
                    if e.response["Error"]["Code"] not in ("InvalidAccessKeyId", "ExpiredToken"):
                        raise
                    creds = provider.refresh_after_failure(creds)
                    value = s3_get(s3_short, creds, bucket, "k")
                    with lock:
                        retried += 1
                assert value == b"v"
                with lock:
                    reads += 1
                    served_by.add(creds.access_key)
            except BaseException as e:
                failures.append(e)
            time.sleep(0.02)

    with oidc_issuer.refresh_token_file(path, every=0.5) as refresher:
        threads = [threading.Thread(target=reader) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not failures, failures[:3]
    assert refresher.count >= 5
    assert provider.exchanges >= 4  # >= 3 expiries survived
    # one exchange per credential lifetime, not per request
    assert provider.exchanges <= 3.5 * S3_SHORT_SESSION / (0.6 * S3_SHORT_SESSION) + 1
    # reads went on through every session: at least 4, so across >= 3 expiries (a count of
    # reads would depend on the machine's load: each read makes a botocore client)
    assert len(served_by) >= 4, (reads, len(served_by))
    # SeaweedFS ends a session up to a second before the Expiration it reports (truncated to
    # the second): a reader may meet one rejection per credential set, never more
    assert retried <= len(threads) * provider.exchanges


def test_adapters_feed_s3fs_obstore_minio_and_pyarrow(s3_server, token_file, bucket) -> None:
    import obstore
    import s3fs
    from minio import Minio
    from obstore.store import S3Store
    from pyarrow import fs as pafs

    provider = STSCredentials(s3_server.endpoint, token_file=token_file)
    fs = s3fs.S3FileSystem(
        session=aiobotocore_session(provider),
        endpoint_url=s3_server.endpoint,
        client_kwargs={"region_name": s3_server.region},
        config_kwargs={"s3": {"addressing_style": "path"}},
    )
    fs.pipe(f"{bucket}/from-s3fs", b"1")
    store = S3Store(
        bucket,
        endpoint=s3_server.endpoint,
        region=s3_server.region,
        client_options={"allow_http": True},
        credential_provider=obstore_credential_provider(provider),
    )
    obstore.put(store, "from-obstore", b"2")
    host = s3_server.endpoint.removeprefix("http://")
    mc = Minio(
        host,
        secure=False,
        region=s3_server.region,
        credentials=minio_credentials_provider(provider),
    )
    mc.put_object(bucket, "from-minio", io.BytesIO(b"3"), 1)
    arrow = pafs.S3FileSystem(
        endpoint_override=s3_server.endpoint, region=s3_server.region, **provider.get().as_dict()
    )
    with arrow.open_input_stream(f"{bucket}/from-minio") as f:
        assert f.read() == b"3"
    assert sorted(o.object_name for o in mc.list_objects(bucket)) == [
        "from-minio",
        "from-obstore",
        "from-s3fs",
    ]
    assert provider.exchanges == 1


# -- Swift ----------------------------------------------------------------------------------


def swift_get(creds, path: str = "") -> requests.Response:
    headers = {"X-Auth-Token": creds.token.reveal()} if creds.token else {}
    return requests.get(f"{creds.storage_url}/{path}", headers=headers, timeout=30)


def test_tempauth_token_expiry_and_reauth(swift_server) -> None:
    auth = TempAuth(swift_server.auth_url, "test:tester", "testing")
    creds = auth.get()
    assert creds.storage_url == swift_server.storage_url("test")
    assert 0 < creds.expires_at - time.time() <= 86400 + 5
    assert swift_get(creds).status_code in (200, 204)
    swift_server.invalidate_tokens()
    assert swift_get(creds).status_code == 401
    fresh = auth.refresh_after_failure(creds)
    assert fresh.token != creds.token
    assert swift_get(fresh).status_code in (200, 204)
    assert auth.exchanges == 2


def test_tempauth_wrong_key(swift_server) -> None:
    with pytest.raises(SwiftAuthError, match=r"rejected user 'test:tester' \(401\)"):
        TempAuth(swift_server.auth_url, "test:tester", "wrong").get()


@pytest.mark.parametrize("kind", ["password", "application_credential"])
def test_keystone_from_os_variables(swift_server, kind: str) -> None:
    auth = swift_auth(env=swift_server.os_env(kind))
    creds = auth.get()
    assert swift_server.keystone_project_id in creds.storage_url
    assert creds.expires_at > time.time()
    assert swift_get(creds).status_code in (200, 204)


def test_keystone_reauth_after_token_revoked(swift_server) -> None:
    auth = swift_auth(env=swift_server.os_env("password"))
    creds = auth.get()
    token = creds.token.reveal()
    r = requests.delete(
        f"{swift_server.keystone_url}/auth/tokens",
        headers={"X-Auth-Token": token, "X-Subject-Token": token},
        timeout=30,
    )
    assert r.status_code == 204
    assert swift_get(creds).status_code == 401
    assert swift_get(auth.refresh_after_failure(creds)).status_code in (200, 204)


def test_preauth_token_rejected_says_to_get_a_new_one(swift_server) -> None:
    creds = TempAuth(swift_server.auth_url, "test:tester", "testing").get()
    auth = swift_auth(preauthurl=creds.storage_url, preauthtoken=creds.token.reveal())
    assert isinstance(auth, PreAuth)
    assert swift_get(auth.get()).status_code in (200, 204)
    with pytest.raises(SwiftAuthError, match=r"expired or was revoked.*swift auth") as e:
        auth.refresh_after_failure(auth.get())
    assert creds.token.reveal() not in str(e.value)


def test_token_from_env_is_replaced_by_a_newer_one_there(swift_server, monkeypatch) -> None:
    """The notebook loop: the token in OS_AUTH_TOKEN expires, acquire_token() sets a new one,
    and the same (cached) auth object uses it instead of failing until a restart."""
    first = TempAuth(swift_server.auth_url, "test:tester", "testing").get()
    monkeypatch.setenv("OS_STORAGE_URL", first.storage_url)
    monkeypatch.setenv("OS_AUTH_TOKEN", first.token.reveal())
    auth = swift_auth()
    assert isinstance(auth, PreAuth) and swift_get(auth.get()).status_code in (200, 204)
    swift_server.invalidate_tokens()
    assert swift_get(auth.get()).status_code == 401
    with pytest.raises(SwiftAuthError, match="expired or was revoked"):
        auth.refresh_after_failure(auth.get())  # nothing newer in the environment yet
    acquire_token(swift_server.auth_url, "test:tester", "testing")
    fresh = auth.refresh_after_failure(auth.get())
    assert fresh.token != first.token and swift_get(fresh).status_code in (200, 204)


def test_acquire_token_like_zarr_swiftstore(swift_server, monkeypatch, capsys) -> None:
    # set first, so that monkeypatch restores the environment acquire_token changes
    monkeypatch.setenv("OS_STORAGE_URL", "unset")
    monkeypatch.setenv("OS_AUTH_TOKEN", "unset")
    auth = acquire_token(swift_server.auth_url, "test:tester", "testing")
    assert capsys.readouterr().out.startswith("Token expires in: ")
    assert os.environ["OS_STORAGE_URL"] == auth["preauthurl"] == swift_server.storage_url("test")
    assert os.environ["OS_AUTH_TOKEN"] == auth["preauthtoken"]


# -- secrets --------------------------------------------------------------------------------


def test_no_secret_in_logs_reprs_or_errors(
    swift_server, s3_server, oidc_issuer, token_file, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    wrong = "wrong-" + "password-x"  # built, so tracebacks' source lines do not hold it
    secrets = [wrong, token_file.read_text().strip()]
    tempauth = TempAuth(swift_server.auth_url, "test:tester", "testing")
    creds = tempauth.get()
    secrets.append(creds.token.reveal())
    keystone = swift_auth(env=swift_server.os_env("application_credential"))
    secrets += [swift_server.os_env("application_credential")["OS_APPLICATION_CREDENTIAL_SECRET"]]
    secrets.append(keystone.get().token.reveal())
    sts = STSCredentials(s3_server.endpoint, token_file=token_file)
    s3 = sts.get()
    secrets += [s3.secret_key.reveal(), s3.session_token.reveal()]
    texts += [repr(x) for x in (tempauth, creds, keystone, keystone.get(), sts, s3)]
    texts += [str(x) for x in (tempauth, creds, keystone, sts, s3)]
    for bad in (
        lambda: TempAuth(swift_server.auth_url, "test:tester", wrong).get(),
        lambda: STSCredentials(s3_server.endpoint, oidc_issuer.mint(bad_signature=True)).get(),
        lambda: PreAuth(creds.storage_url, creds.token.reveal()).refresh_after_failure(creds),
    ):
        with pytest.raises(Exception) as e:
            bad()
        texts.append(str(e.value))
        texts.append("".join(traceback.format_exception(e.value)))
    texts += [r.getMessage() for r in caplog.records]
    blob = "\n".join(texts)
    for secret in secrets:
        assert len(secret) >= 7
        assert secret not in blob
