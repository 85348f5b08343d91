"""Pure-function tests of the auth core: token parsing and discovery, loading, exports, secrets."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import warnings
from pathlib import Path

import pytest

from zarrstores.auth import (
    AnonymousS3,
    AnonymousSwift,
    ConfigurationError,
    FileToken,
    KeystoneAuth,
    PreAuth,
    S3Credentials,
    Secret,
    StaticS3Credentials,
    StaticToken,
    STSCredentials,
    TempAuth,
    TokenError,
    TokenExpiredError,
    TokenFilePermissionWarning,
    TokenNotFoundError,
    decode_claims,
    find_token,
    format_exports,
    getenv_auth,
    mc_alias,
    s3_credentials,
    s3_exports,
    swift_auth,
    swift_exports,
    token_source,
)
from zarrstores.auth._refresh import RefreshingCache
from zarrstores.auth.errors import AuthConnectionError, TransientError
from zarrstores.auth.swift import SwiftCredentials


def jwt(claims: dict) -> str:
    def part(d: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'kid': 'k'})}.{part(claims)}.c2ln"


FRESH = jwt({"sub": "alice", "iss": "https://idp", "aud": "minio", "exp": time.time() + 3600})


def test_decode_claims_reads_payload_without_verifying() -> None:
    assert decode_claims(FRESH)["sub"] == "alice"
    with pytest.raises(TokenError, match="not a JWT"):
        decode_claims("opaque-token")


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (f"Bearer {FRESH}", "starts with 'Bearer ': keep only the token after it"),
        (json.dumps({"access_token": FRESH}), r"is JSON: keep only its access token \(`jq"),
        (f"{FRESH}\n{FRESH}", "has several words or lines: keep only the one token"),
        ("a.b c.d", "has several words"),
        ("a.b{.c", "is not a JWT: pass an OIDC access token"),
    ],
)
def test_a_token_file_of_another_shape_says_what_to_keep(
    tmp_path: Path, content: str, says: str
) -> None:
    """Each of these has three dot-separated parts, so it went to STS, whose answer was only
    'token is malformed'."""
    path = tmp_path / "token"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(TokenError, match=f"^the token from file {path} {says}"):
        FileToken(path, settle=0).get()


def test_expired_token_says_when_and_what_to_check() -> None:
    expired = jwt({"sub": "alice", "exp": time.time() - 120})
    with pytest.raises(TokenExpiredError, match=r"expired at .* UTC \(1\d\d s ago\).*sts-wire"):
        StaticToken(expired).get()


def test_discovery_order_follows_wlcg_then_sts_wire(tmp_path: Path) -> None:
    (tmp_path / ".token").write_text(FRESH)
    bt = tmp_path / "bt"
    bt.write_text(FRESH)
    env = {"BEARER_TOKEN": FRESH, "BEARER_TOKEN_FILE": str(bt)}
    assert find_token(env, tmp_path).describe() == "$BEARER_TOKEN"
    del env["BEARER_TOKEN"]
    assert find_token(env, tmp_path).describe() == f"file {bt}"
    del env["BEARER_TOKEN_FILE"]
    env["XDG_RUNTIME_DIR"] = str(tmp_path)
    (tmp_path / f"bt_u{os.getuid()}").write_text(FRESH)
    assert find_token(env, tmp_path).describe() == f"file {tmp_path}/bt_u{os.getuid()}"
    (tmp_path / f"bt_u{os.getuid()}").unlink()
    if not Path(f"/tmp/bt_u{os.getuid()}").exists():
        assert find_token(env, tmp_path).describe() == f"file {tmp_path}/.token"


def test_missing_token_lists_every_place_looked(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    if Path(f"/tmp/bt_u{os.getuid()}").exists():
        pytest.fail("a stray /tmp/bt_u$UID would hide this check; remove it")
    with pytest.raises(TokenNotFoundError) as e:
        find_token({}, tmp_path)
    for place in ("$BEARER_TOKEN", "$BEARER_TOKEN_FILE", "bt_u", "./.token", "~/.token"):
        assert place in str(e.value)


def test_bearer_token_file_set_but_missing_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / ".token").write_text(FRESH)
    source = find_token({"BEARER_TOKEN_FILE": str(tmp_path / "nope")}, tmp_path)
    with pytest.raises(TokenNotFoundError, match="nope does not exist"):
        source.get()


def test_file_token_is_reread_and_waits_out_a_truncated_write(tmp_path: Path) -> None:
    path = tmp_path / "tok"
    path.write_text(FRESH)
    path.chmod(0o600)
    source = FileToken(path)
    assert source.get() == FRESH
    other = jwt({"sub": "bob", "exp": time.time() + 60})
    path.write_text("")  # sts-wire truncates, then writes

    def write_later() -> None:
        time.sleep(0.2)
        path.write_text(other + "\n")

    t = threading.Thread(target=write_later)
    t.start()
    assert source.get() == other
    t.join()


def test_empty_and_unreadable_token_files_have_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "tok"
    path.write_text("")
    path.chmod(0o600)
    with pytest.raises(TokenError, match="is empty"):
        FileToken(path, settle=0.05).get()
    with pytest.raises(TokenError, match="is a directory: name the token file in it"):
        FileToken(tmp_path, settle=0.05).get()


def test_loose_token_file_permissions_warn(tmp_path: Path) -> None:
    path = tmp_path / "tok"
    path.write_text(FRESH)
    path.chmod(0o644)
    with pytest.warns(TokenFilePermissionWarning, match="chmod 600"):
        FileToken(path).get()
    path.chmod(0o600)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FileToken(path).get()


def test_token_source_reads_a_path_passed_as_token(tmp_path: Path) -> None:
    path = tmp_path / ".token"
    path.write_text(FRESH)
    path.chmod(0o600)
    assert isinstance(token_source(str(path)), FileToken)
    assert isinstance(token_source(FRESH), StaticToken)
    assert token_source(lambda: FRESH).get() == FRESH


def test_refreshing_cache_single_flight_and_windows() -> None:
    calls = []

    def fetch() -> tuple[int, float]:
        calls.append(1)
        time.sleep(0.05)
        return (len(calls), time.time() + 100)

    cache = RefreshingCache(fetch, lambda v: v[1])
    threads = [threading.Thread(target=cache.get) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and cache.exchanges == 1
    first = cache.get()
    # 64 callers that saw the same rejected value share one refresh
    threads = [
        threading.Thread(target=cache.refresh_after_failure, args=(first,)) for _ in range(64)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.exchanges == 2


def test_refreshing_cache_refreshes_inside_the_window_not_per_call() -> None:
    lifetime = 1.0
    cache = RefreshingCache(lambda: time.time() + lifetime, lambda v: v)
    end = time.time() + 3 * lifetime
    while time.time() < end:
        cache.get()
        time.sleep(0.002)
    # refreshed once per ~3/4 lifetime: about 4 fetches, never one per call
    assert 3 <= cache.exchanges <= 6


def test_refreshing_cache_retries_transient_then_gives_up_clearly() -> None:
    attempts = []

    def fetch() -> None:
        attempts.append(1)
        raise TransientError("cannot reach X")

    cache = RefreshingCache(fetch, lambda v: None, retries=2, backoff=0.01)
    with pytest.raises(AuthConnectionError, match=r"cannot reach X .*3 attempts"):
        cache.get()
    assert len(attempts) == 3


def test_secrets_never_show() -> None:
    s = Secret("hunter2-very-secret")
    creds = S3Credentials("ASIAEXAMPLEKEY123456", s, Secret("sessiontok-xyz"))
    texts = [repr(s), str(s), f"{s}", repr(creds), str(creds)]
    texts += [repr(TempAuth("http://x/auth/v1.0", "a:b", "hunter2-very-secret"))]
    texts += [repr(PreAuth("http://x/v1/AUTH_a", "hunter2-very-secret"))]
    texts += [repr(StaticS3Credentials("AK", "hunter2-very-secret"))]
    texts += [repr(StaticToken(FRESH))]
    texts += [repr(SwiftCredentials("http://x", Secret("hunter2-very-secret")))]
    for text in texts:
        assert "hunter2" not in text and "sessiontok" not in text and FRESH not in text
    assert "ASIAEXAMPLEKEY123456" not in repr(creds)


def test_swift_auth_from_options_and_env() -> None:
    assert isinstance(swift_auth(authurl="http://h/auth/v1.0", user="a:b", key="k"), TempAuth)
    ks = swift_auth(
        authurl="http://h:5000/v3",
        user="u",
        key="p",
        auth_version="3",
        os_options={"project_name": "p", "user_domain_name": "Default"},
    )
    assert isinstance(ks, KeystoneAuth)
    assert isinstance(swift_auth(preauthurl="http://h/v1/AUTH_a", preauthtoken="t"), PreAuth)
    assert isinstance(swift_auth(anon=True, storage_url="http://h/v1/AUTH_a"), AnonymousSwift)
    env = {"ST_AUTH": "http://h/auth/v1.0", "ST_USER": "a:b", "ST_KEY": "k"}
    assert isinstance(swift_auth(env=env), TempAuth)
    env |= {"OS_STORAGE_URL": "http://h/v1/AUTH_a", "OS_AUTH_TOKEN": "t"}
    assert isinstance(swift_auth(env=env), PreAuth)
    app = {
        "OS_AUTH_URL": "http://h:5000/v3",
        "OS_AUTH_TYPE": "v3applicationcredential",
        "OS_APPLICATION_CREDENTIAL_ID": "id",
        "OS_APPLICATION_CREDENTIAL_SECRET": "s",
    }
    auth = swift_auth(env=app)
    assert isinstance(auth, KeystoneAuth) and auth.auth_type == "v3applicationcredential"
    by_options = swift_auth(
        authurl="http://h:5000/v3",
        os_options={
            "auth_type": "v3applicationcredential",
            "application_credential_id": "id",
            "application_credential_secret": "s",
        },
    )
    assert isinstance(by_options, KeystoneAuth)
    assert by_options.auth_type == "v3applicationcredential"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"env": {}}, "no Swift credentials found"),
        ({"env": {"ST_AUTH": "http://h/auth/v1.0"}}, "ST_USER and ST_KEY not"),
        ({"authurl": "http://h/auth/v1.0", "user": "noaccount", "key": "k"}, "account:user"),
        ({"anon": True, "env": {}}, "storage URL"),
        ({"preauthurl": "http://h"}, "both preauthurl and preauthtoken"),
        ({"env": {"OS_AUTH_URL": "http://h/v3", "OS_USERNAME": "u"}}, "OS_PASSWORD is not"),
    ],
)
def test_swift_auth_configuration_errors_say_what_to_do(options: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        swift_auth(**options)


def test_getenv_auth_matches_zarr_swiftstore() -> None:
    env = {"ST_AUTH": "http://h/auth/v1.0", "ST_USER": "a:b", "ST_KEY": "k", "OTHER": "x"}
    assert getenv_auth(env) == {"authurl": "http://h/auth/v1.0", "user": "a:b", "key": "k"}
    with pytest.raises(ValueError, match="No environment variables found"):
        getenv_auth({})


def test_s3_credentials_precedence(tmp_path: Path) -> None:
    ep = "http://127.0.0.1:9000"
    provider, endpoint = s3_credentials(ep, anon=True, env={})
    assert isinstance(provider, AnonymousS3) and endpoint == ep
    provider, _ = s3_credentials(ep, key="AK", secret="SK", env={})
    assert isinstance(provider, StaticS3Credentials)
    provider, _ = s3_credentials(ep, token=FRESH, env={})
    assert isinstance(provider, STSCredentials) and provider.exchanges == 0
    env = {"AWS_ENDPOINT_URL": ep, "BEARER_TOKEN": FRESH}
    provider, endpoint = s3_credentials(env=env)
    assert isinstance(provider, STSCredentials) and endpoint == ep
    with pytest.raises(ConfigurationError, match="no S3 endpoint"):
        s3_credentials(env={})
    with pytest.raises(ConfigurationError, match="not an http"):
        s3_credentials("minio.example.org", anon=True, env={})


def test_mc_alias_from_env_and_config(tmp_path: Path) -> None:
    env = {"MC_HOST_site": "https://AK:S%2FK:TOK@minio.example.org:9000"}
    creds, endpoint = mc_alias("site", env=env)
    assert endpoint == "https://minio.example.org:9000"
    got = creds.get()
    assert got.secret_key.reveal() == "S/K" and got.session_token.reveal() == "TOK"
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {"aliases": {"play": {"url": "https://play/", "accessKey": "A", "secretKey": "B"}}}
        )
    )
    creds, endpoint = mc_alias("play", env={"MC_CONFIG_DIR": str(tmp_path)})
    assert endpoint == "https://play" and creds.get().access_key == "A"
    with pytest.raises(ConfigurationError, match="aliases there: play"):
        mc_alias("nope", env={"MC_CONFIG_DIR": str(tmp_path)})


def test_exports_are_shell_safe() -> None:
    creds = S3Credentials("AK", Secret("s/k+'x"), Secret("tok"))
    exports = s3_exports(creds, "http://127.0.0.1:9000", alias="local")
    assert exports["MC_HOST_local"] == "http://AK:s%2Fk%2B%27x:tok@127.0.0.1:9000"
    assert exports["AWS_SESSION_TOKEN"] == "tok"
    assert exports["RCLONE_CONFIG_LOCAL_TYPE"] == "s3"
    text = format_exports(exports)
    assert "export AWS_SECRET_ACCESS_KEY='s/k+'\"'\"'x'" in text
    assert swift_exports(SwiftCredentials("http://h/v1/AUTH_a", Secret("t"))) == {
        "OS_STORAGE_URL": "http://h/v1/AUTH_a",
        "OS_AUTH_TOKEN": "t",
    }
