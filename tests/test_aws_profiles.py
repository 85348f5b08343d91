"""AWS shared config profiles on SeaweedFS, as the aws CLI and s3fs users have them: the keys in
``~/.aws/credentials``, the endpoint in ``~/.aws/config``; the aws CLI and botocore reading the
same files check from outside that the objects are where we put them."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import botocore.session
import fsspec
import numpy as np
import pytest
import xarray as xr

from zarrstores.auth import ConfigurationError, StaticS3Credentials, STSCredentials
from zarrstores.devserver.oidc import OIDCIssuer
from zarrstores.devserver.s3 import S3Server
from zarrstores.minio import MinioStore


@pytest.fixture
def aws_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server: S3Server) -> Path:
    """A user with a ``site`` profile (admin keys; the S3 endpoint in its ``services``
    section) and nothing else: no token anywhere, no AWS_* variables."""
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "credentials").write_text(
        "[site]\n"
        f"aws_access_key_id = {s3_server.admin_access_key}\n"
        f"aws_secret_access_key = {s3_server.admin_secret_key}\n"
    )
    (home / ".aws" / "config").write_text(
        "[profile site]\nregion = us-east-1\nservices = local\n"
        f"[services local]\ns3 =\n  endpoint_url = {s3_server.endpoint}\n"
        "[profile sso]\nsso_start_url = https://sso.example.org\n"
    )
    for var in [v for v in os.environ if v.startswith(("AWS_", "BEARER_TOKEN", "XDG_RUNTIME"))]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(os, "getuid", lambda: 987654)  # no /tmp/bt_u<uid> of this machine's
    monkeypatch.setenv("USER", "tester")  # getpass would ask for uid 987654's name
    return home


def test_a_profile_gives_keys_and_endpoint_by_option_or_aws_profile(
    aws_home: Path, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MinioStore(bucket, "by-option", profile="site")
    assert isinstance(store.credentials, StaticS3Credentials)
    store["k"] = b"from the profile"
    ds = xr.Dataset({"a": ("x", np.arange(4.0))})
    ds.to_zarr(f"minio://{bucket}/by-url.zarr", storage_options={"profile": "site"}, mode="w")
    monkeypatch.setenv("AWS_PROFILE", "site")
    back = xr.open_zarr(f"minio://{bucket}/by-url.zarr")  # AWS_PROFILE alone
    xr.testing.assert_identical(back.load(), ds)
    # botocore, from the same files, finds the endpoint and the objects
    client = botocore.session.Session(profile="site").create_client("s3")
    listed = client.list_objects_v2(Bucket=bucket, Prefix="by-")
    keys = {c["Key"] for c in listed["Contents"]}
    assert "by-option/k" in keys and "by-url.zarr/zarr.json" in keys
    assert client.get_object(Bucket=bucket, Key="by-option/k")["Body"].read() == b"from the profile"


def test_the_aws_cli_and_we_share_a_profile(aws_home: Path, bucket: str, tmp_path: Path) -> None:
    """The aws CLI, given the same profile, lists what we wrote and writes what we read."""
    aws = [str(Path(sys.executable).parent / "aws"), "--profile", "site", "s3"]
    MinioStore(bucket, "cli", profile="site")["ours"] = b"written by zarrstores"
    run = functools.partial(subprocess.run, capture_output=True, text=True, timeout=120)
    listed = run([*aws, "ls", f"s3://{bucket}/cli/"])
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split()[-1] == "ours"
    theirs = tmp_path / "theirs"
    theirs.write_bytes(b"written by the aws CLI")
    copied = run([*aws, "cp", str(theirs), f"s3://{bucket}/cli/theirs"])
    assert copied.returncode == 0, copied.stderr
    assert MinioStore(bucket, "cli", profile="site")["theirs"] == b"written by the aws CLI"


def test_the_default_profile_comes_after_a_token(
    aws_home: Path, bucket: str, token_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As AWS_ACCESS_KEY_ID does: keys in the default profile serve when no token is found;
    a token found (BEARER_TOKEN_FILE here) is exchanged instead."""
    creds = aws_home / ".aws" / "credentials"
    creds.write_text(creds.read_text().replace("[site]", "[default]"))
    config = aws_home / ".aws" / "config"
    config.write_text(config.read_text().replace("[profile site]", "[default]"))
    store = MinioStore(bucket, "default")
    assert isinstance(store.credentials, StaticS3Credentials)
    store["k"] = b"v"
    monkeypatch.setenv("BEARER_TOKEN_FILE", str(token_file))
    with_token = MinioStore(bucket, "default")
    assert isinstance(with_token.credentials, STSCredentials)
    assert with_token["k"] == b"v"


def test_a_profile_with_a_token_file_and_role_exchanges_it(
    aws_home: Path, bucket: str, oidc_issuer: OIDCIssuer, tmp_path: Path
) -> None:
    """``web_identity_token_file`` + ``role_arn``: the token file is exchanged at the site's
    STS (re-read at each exchange, as ours always are), not sent to AWS."""
    token = tmp_path / "oidc-token"
    oidc_issuer.write_token(token)
    config = aws_home / ".aws" / "config"
    endpoint = config.read_text().split("endpoint_url = ")[1].split()[0]
    config.write_text(
        config.read_text()
        + f"[profile oidc]\nweb_identity_token_file = {token}\n"
        + f"role_arn = arn:aws:iam::role/readwrite\nendpoint_url = {endpoint}\n"
    )
    fs = fsspec.filesystem("minio", profile="oidc", skip_instance_cache=True)
    assert isinstance(fs.credentials, STSCredentials)
    fs.pipe_file(f"{bucket}/oidc/k", b"exchanged")
    assert fs.cat_file(f"{bucket}/oidc/k") == b"exchanged"
    assert fs.credentials.exchanges == 1


def test_profiles_that_cannot_serve_say_why(
    aws_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigurationError, match=r"AWS profile 'nope' is in neither .*site, sso"):
        MinioStore("b", profile="nope")
    monkeypatch.setenv("AWS_PROFILE", "nope")  # named, it must exist (as for the aws CLI)
    with pytest.raises(ConfigurationError, match="AWS profile 'nope' is in neither"):
        MinioStore("b")
    monkeypatch.delenv("AWS_PROFILE")
    with pytest.raises(ConfigurationError, match=r"'sso' has neither aws_access_key_id .*SSO"):
        MinioStore("b", profile="sso", endpoint_url="http://127.0.0.1:1")
    (aws_home / ".aws" / "config").write_text("[profile broken\n")
    with pytest.raises(ConfigurationError, match=r"AWS config file .*config cannot be read"):
        MinioStore("b", profile="site")
