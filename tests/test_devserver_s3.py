"""The test OIDC issuer and the real S3 server with STS (SeaweedFS) that the S3 tests stand on."""

from __future__ import annotations

import json
import stat
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import botocore.config
import botocore.session
import jwt
import pytest
from botocore.exceptions import ClientError
from fixtures_s3 import S3_SHORT_SESSION

from zarrstores.devserver._proc import http_status
from zarrstores.devserver.oidc import OIDCIssuer
from zarrstores.devserver.s3 import S3Server

# -- helpers: STS by a plain form POST, as MinIO clients do it ---------------------------------


def assume_role(
    server: S3Server, token: str, *, role_arn: str | None = None, duration: int = 900
) -> tuple[int, dict[str, str]]:
    """HTTP status and either the credentials or ``{"Code": ..., "Message": ...}``."""
    form = {
        "Action": "AssumeRoleWithWebIdentity",
        "Version": "2011-06-15",
        "WebIdentityToken": token,
        "RoleSessionName": "zarrstores-test",  # SeaweedFS requires 2-64 characters
        "DurationSeconds": str(duration),
    }
    if role_arn:
        form["RoleArn"] = role_arn
    request = urllib.request.Request(
        server.endpoint + "/", data=urllib.parse.urlencode(form).encode(), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    # Take leaf elements by local name: the response is namespaced.
    fields = {el.tag.rsplit("}", 1)[-1]: el.text or "" for el in ET.fromstring(body).iter()}
    wanted = ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration", "Code", "Message")
    return status, {k: v for k, v in fields.items() if k in wanted}


def s3_client(server: S3Server, creds: dict[str, str] | None = None) -> Any:
    """A botocore client with STS credentials, or an unsigned (anonymous) one."""
    config = botocore.config.Config(
        signature_version="s3v4" if creds else botocore.UNSIGNED,
        s3={"addressing_style": "path"},
        retries={"max_attempts": 1},
    )
    keys = (
        {
            "aws_access_key_id": creds["AccessKeyId"],
            "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"],
        }
        if creds
        else {}
    )
    return botocore.session.get_session().create_client(
        "s3", endpoint_url=server.endpoint, region_name=server.region, config=config, **keys
    )


def status_and_code(error: ClientError) -> tuple[int, str]:
    return error.response["ResponseMetadata"]["HTTPStatusCode"], error.response["Error"]["Code"]


def error_of(call: Callable[[], Any]) -> tuple[int, str]:
    """HTTP status and S3 error code of a call that must fail."""
    with pytest.raises(ClientError) as info:
        call()
    return status_and_code(info.value)


def anonymous_get(url: str) -> int:
    return http_status(url, timeout=10)


# -- the OIDC issuer ----------------------------------------------------------------------------


def get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def test_issuer_serves_discovery_and_jwks(oidc_issuer: OIDCIssuer) -> None:
    discovery = get_json(oidc_issuer.url + "/.well-known/openid-configuration")
    assert discovery["issuer"] == oidc_issuer.url
    assert "RS256" in discovery["id_token_signing_alg_values_supported"]
    assert discovery["token_endpoint"].startswith(oidc_issuer.url)
    keys = get_json(discovery["jwks_uri"])["keys"]
    assert [(k["kid"], k["kty"], k["alg"]) for k in keys] == [(oidc_issuer.kid, "RSA", "RS256")]


def test_minted_token_verifies_against_the_jwks(oidc_issuer: OIDCIssuer) -> None:
    token = oidc_issuer.mint(sub="alice", policy="readonly")
    key = jwt.PyJWKClient(oidc_issuer.jwks_uri).get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token, key, algorithms=["RS256"], audience=oidc_issuer.audience, issuer=oidc_issuer.url
    )
    assert jwt.get_unverified_header(token)["kid"] == oidc_issuer.kid
    assert (claims["sub"], claims["policy"]) == ("alice", "readonly")
    assert 3590 <= claims["exp"] - time.time() <= 3600


def test_broken_tokens_do_not_verify(oidc_issuer: OIDCIssuer) -> None:
    jwks = jwt.PyJWKClient(oidc_issuer.jwks_uri)

    def decode(token: str) -> dict[str, Any]:
        key = jwks.get_signing_key_from_jwt(token)
        return jwt.decode(token, key, algorithms=["RS256"], audience=oidc_issuer.audience)

    bad = oidc_issuer.mint(bad_signature=True)
    assert jwt.get_unverified_header(bad)["kid"] == oidc_issuer.kid
    with pytest.raises(jwt.InvalidSignatureError):
        decode(bad)
    with pytest.raises(jwt.ExpiredSignatureError):
        decode(oidc_issuer.mint(expires_in=-60))
    with pytest.raises(jwt.ImmatureSignatureError):
        decode(oidc_issuer.mint(not_before=300))
    with pytest.raises(jwt.InvalidAudienceError):
        decode(oidc_issuer.mint(aud="someone-else"))
    with pytest.raises(jwt.PyJWKClientError):
        decode(oidc_issuer.mint(kid="unknown"))
    no_exp = decode(oidc_issuer.mint(expires_in=None, policy=None, extra_claims={"jti": None}))
    assert not {"exp", "policy", "jti"} & no_exp.keys()


def test_write_token_truncates_and_keeps_the_file_private(
    oidc_issuer: OIDCIssuer, tmp_path: Path
) -> None:
    path = tmp_path / "token"
    path.write_text("x" * 5000)  # longer than a token: leftovers would show
    path.chmod(0o644)
    token = oidc_issuer.write_token(path, sub="bob")
    assert path.read_text() == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == "bob"


def test_token_file_fixture(token_file: Path, oidc_issuer: OIDCIssuer) -> None:
    claims = jwt.decode(token_file.read_text(), options={"verify_signature": False})
    assert claims["iss"] == oidc_issuer.url
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600


def test_refresh_token_file_rewrites_it(oidc_issuer: OIDCIssuer, tmp_path: Path) -> None:
    path = tmp_path / "token"
    seen: set[str] = set()
    with oidc_issuer.refresh_token_file(path, every=0.1, sub="carol") as refresher:
        assert path.read_text() == refresher.token  # written before it returns
        deadline = time.monotonic() + 10
        while refresher.count < 3 and time.monotonic() < deadline:
            seen.add(path.read_text())  # may be empty mid-rewrite, as with sts-wire
            time.sleep(0.03)
        assert refresher.count >= 3
    count = refresher.count
    time.sleep(0.3)
    assert refresher.count == count  # stopped
    assert path.read_text() == refresher.token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    tokens = seen - {""}
    assert len(tokens) >= 2
    assert {jwt.decode(t, options={"verify_signature": False})["sub"] for t in tokens} == {"carol"}


# -- the S3 server --------------------------------------------------------------------------


def test_s3_server_starts_and_stops_in_seconds_leaving_nothing(oidc_issuer: OIDCIssuer) -> None:
    started = time.monotonic()
    with S3Server(oidc_issuer) as server:
        startup = time.monotonic() - started
        assert anonymous_get(server.endpoint + "/") == 403
        pids, workdir = list(server.pids), server.dir
        assert pids and all(Path(f"/proc/{pid}").exists() for pid in pids)
        stopping = time.monotonic()
    shutdown = time.monotonic() - stopping
    assert startup < 15 and shutdown < 10, (startup, shutdown)
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
    assert not workdir.exists()  # dir=None: a temporary directory
    assert not processes_mentioning(str(workdir))
    with pytest.raises(OSError):
        http_status(server.endpoint + "/", timeout=2)


def processes_mentioning(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if text.encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                pass
    return found


def test_sts_credentials_read_and_write(
    s3_server: S3Server, oidc_issuer: OIDCIssuer, bucket: str
) -> None:
    status, creds = assume_role(s3_server, oidc_issuer.mint(policy=s3_server.readwrite_policy))
    assert status == 200, creds
    assert creds["AccessKeyId"].startswith("ASIA")
    assert creds["SecretAccessKey"] and creds["SessionToken"]
    expires = datetime.fromisoformat(creds["Expiration"]).timestamp()
    assert 890 <= expires - time.time() <= 901  # DurationSeconds=900 is honoured
    client = s3_client(s3_server, creds)
    client.put_object(Bucket=bucket, Key="a/b.txt", Body=b"hello")
    assert client.get_object(Bucket=bucket, Key="a/b.txt")["Body"].read() == b"hello"


# (token, HTTP status, STS error code) as SeaweedFS 4.48 answers.
BAD_TOKENS: dict[str, tuple[Callable[[OIDCIssuer], str], int, str]] = {
    "bad-signature": (lambda i: i.mint(bad_signature=True), 400, "InvalidParameterValue"),
    "expired": (lambda i: i.mint(expires_in=-60), 400, "ExpiredTokenException"),
    "garbage": (lambda i: "not-a-jwt", 403, "AccessDenied"),
    "unknown-kid": (lambda i: i.mint(kid="unknown"), 403, "AccessDenied"),
    "wrong-audience": (lambda i: i.mint(aud="someone-else"), 400, "InvalidParameterValue"),
    "not-yet-valid": (lambda i: i.mint(not_before=300), 400, "InvalidParameterValue"),
    # Without a policy claim claim-based mode has nothing to go on (no RoleArn sent).
    "no-policy-claim": (lambda i: i.mint(policy=None), 403, "AccessDenied"),
}


@pytest.mark.parametrize("case", BAD_TOKENS)
def test_sts_rejects_bad_tokens(s3_server: S3Server, oidc_issuer: OIDCIssuer, case: str) -> None:
    make_token, want_status, want_code = BAD_TOKENS[case]
    status, answer = assume_role(s3_server, make_token(oidc_issuer))
    assert (status, answer.get("Code")) == (want_status, want_code), answer
    assert "AccessKeyId" not in answer


def test_readonly_token_reads_but_cannot_write(
    s3_server: S3Server, oidc_issuer: OIDCIssuer, bucket: str
) -> None:
    s3_server.admin_client().put_object(Bucket=bucket, Key="x", Body=b"data")
    status, creds = assume_role(s3_server, oidc_issuer.mint(policy=s3_server.readonly_policy))
    assert status == 200, creds
    client = s3_client(s3_server, creds)
    assert client.get_object(Bucket=bucket, Key="x")["Body"].read() == b"data"
    assert [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]] == ["x"]
    client.head_bucket(Bucket=bucket)
    denied = (403, "AccessDenied")
    assert error_of(lambda: client.put_object(Bucket=bucket, Key="y", Body=b"")) == denied
    assert error_of(lambda: client.delete_object(Bucket=bucket, Key="x")) == denied


def test_role_arn_mode_for_clients_that_insist_on_one(
    s3_server: S3Server, oidc_issuer: OIDCIssuer, bucket: str
) -> None:
    token = oidc_issuer.mint(policy=None)
    status, creds = assume_role(s3_server, token, role_arn=s3_server.readonly_role_arn)
    assert status == 200, creds
    client = s3_client(s3_server, creds)
    client.list_objects_v2(Bucket=bucket)
    denied = (403, "AccessDenied")
    assert error_of(lambda: client.put_object(Bucket=bucket, Key="y", Body=b"")) == denied


def test_sessions_end_after_max_session_length(s3_short: S3Server, oidc_issuer: OIDCIssuer) -> None:
    admin = s3_short.admin_client()
    admin.create_bucket(Bucket="expiry")
    admin.put_object(Bucket="expiry", Key="k", Body=b"v")
    status, creds = assume_role(s3_short, oidc_issuer.mint(), duration=900)
    assert status == 200, creds
    expires = datetime.fromisoformat(creds["Expiration"]).timestamp()
    assert expires - time.time() <= S3_SHORT_SESSION + 1  # capped, though 900 s were asked
    client = s3_client(s3_short, creds)
    client.get_object(Bucket="expiry", Key="k")
    deadline = time.time() + S3_SHORT_SESSION + 15
    while time.time() < deadline:
        try:
            client.get_object(Bucket="expiry", Key="k")
        except ClientError as e:
            failed_at, error = time.time(), status_and_code(e)
            break
        time.sleep(0.2)
    else:
        pytest.fail("credentials still work long after the session should have ended")
    assert error == (403, "InvalidAccessKeyId")  # MinIO says ExpiredToken
    assert failed_at >= expires - 1.5  # it was the session cap, not something else


def test_bucket_policy_makes_a_prefix_public(s3_server: S3Server, bucket: str) -> None:
    admin = s3_server.admin_client()
    for key in ("public/a.zarr/zarr.json", "public/b.txt", "private/c.txt"):
        admin.put_object(Bucket=bucket, Key=key, Body=b"{}")
    url = f"{s3_server.endpoint}/{bucket}"
    assert anonymous_get(f"{url}/public/b.txt") == 403
    assert error_of(lambda: admin.get_bucket_policy(Bucket=bucket)) == (404, "NoSuchBucketPolicy")

    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:GetObject"],
                "Resource": [f"arn:aws:s3:::{bucket}/public/*"],
            },
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{bucket}"],
                "Condition": {"StringLike": {"s3:prefix": ["public/*"]}},
            },
        ],
    }
    admin.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    stored = json.loads(admin.get_bucket_policy(Bucket=bucket)["Policy"])
    assert stored["Statement"][0]["Resource"] == f"arn:aws:s3:::{bucket}/public/*"  # normalised

    # Effective at once, for plain HTTP and for an unsigned S3 client alike.
    assert anonymous_get(f"{url}/public/a.zarr/zarr.json") == 200
    assert anonymous_get(f"{url}/private/c.txt") == 403
    anonymous = s3_client(s3_server)
    listing = anonymous.list_objects_v2(Bucket=bucket, Prefix="public/")
    assert [o["Key"] for o in listing["Contents"]] == ["public/a.zarr/zarr.json", "public/b.txt"]
    assert error_of(lambda: anonymous.list_objects_v2(Bucket=bucket))[1] == "AccessDenied"

    admin.delete_bucket_policy(Bucket=bucket)
    assert anonymous_get(f"{url}/public/b.txt") == 403
    assert error_of(lambda: admin.get_bucket_policy(Bucket=bucket)) == (404, "NoSuchBucketPolicy")
