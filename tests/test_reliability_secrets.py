"""Secrets never show: for every auth kind, the reprs and strs of everything a user holds, every
log record at DEBUG (ours and the libraries'), the messages and full tracebacks of refusals,
server errors and wrong secrets are searched for each secret value. Also: TLS verification is
on by default and a CA bundle is honoured; a token file others can read is warned about."""

from __future__ import annotations

import logging
import secrets
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import zarr
from _figures import Figures, figures_fixture  # noqa: F401 (fixture)
from backends import (  # noqa: F401 (fixture)
    fault_proxy,
    keystone_options,
    tls_cert_fixture,
    tls_proxy,
)

from zarrstores.auth import (
    KeystoneAuth,
    PreAuth,
    STSCredentials,
    TempAuth,
    TokenFilePermissionWarning,
    swift_auth,
)
from zarrstores.devserver.oidc import OIDCIssuer
from zarrstores.devserver.s3 import S3Server
from zarrstores.devserver.swift import SwiftServer
from zarrstores.minio import MinioFileSystem, MinioStore
from zarrstores.swift import SwiftFileSystem, SwiftStore

USER = "test:tester"


@dataclass
class Subject:
    """One auth kind in use: a store and a filesystem with it, a way to make their next requests
    fail, and a call with a wrong secret of the same kind."""

    store: Any
    fs: Any
    root: str
    """The container or bucket, as the filesystem names it."""
    fail_next: Callable[[int, int], None]
    """(status, count): the next ``count`` data requests get ``status`` (0: every one)."""
    wrong: Callable[[], Any]
    """A call with :attr:`wrong_secret` in place of the right secret; it must raise."""
    wrong_secret: str
    known: list[str]
    held: list[Any] = field(default_factory=list)
    """Objects a user holds, to repr and str."""

    def secrets(self) -> list[str]:
        """Every secret value in play (read after use: tokens are issued lazily)."""
        values = [*self.known, self.wrong_secret]
        for thing in (self.store, self.fs):
            if isinstance(thing, SwiftStore | SwiftFileSystem):
                token = thing.client.auth.get().token
                values += [token.reveal()] if token is not None else []
            else:
                creds = thing.credentials.get()
                values.append(creds.secret_key.reveal())
                values += [creds.session_token.reveal()] if creds.session_token else []
        return values


@pytest.fixture(scope="module")
def container(s3_server: S3Server) -> str:
    """A Swift container (made by the first write) and an S3 bucket of the same name."""
    name = f"sec-{uuid.uuid4().hex[:12]}"
    s3_server.admin_client().create_bucket(Bucket=name)
    return name


def reads(store_class: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[], Any]:
    """A call that opens a store and reads ``k`` from it."""

    def call() -> Any:
        return store_class(*args, **kwargs)["k"]

    return call


def wrong_value() -> str:
    return "wrong-" + secrets.token_urlsafe(12)  # made at run time: no source line holds it


KINDS = [
    "tempauth",
    "keystone-password",
    "keystone-application-credential",
    "pre-auth",
    "sts-token",
    "sts-token-file",
    "static-keys",
    "mc-alias",
    "aws-profile",
]


@pytest.fixture
def subject(
    request: pytest.FixtureRequest,
    swift_server: SwiftServer,
    s3_server: S3Server,
    oidc_issuer: OIDCIssuer,
    container: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Subject]:
    kind = request.param
    swift_server.clear_faults()
    proxy = fault_proxy(s3_server.endpoint)
    proxy.clear()
    bad = wrong_value()
    options: dict[str, Any]
    wrong: Callable[[], Any]
    if kind in ("tempauth", "keystone-password", "keystone-application-credential", "pre-auth"):
        key = swift_server.users[USER]
        server_proxy = "tempauth"
        if kind == "tempauth":
            options = {"authurl": swift_server.auth_url, "user": USER, "key": key}
            known = [key]
            wrong = TempAuth(swift_server.auth_url, USER, bad).get
        elif kind == "keystone-password":
            options = keystone_options(swift_server)
            known, server_proxy = [options["key"]], "keystone"
            wrong = reads(SwiftStore, container, "", {**options, "key": bad})
        elif kind == "keystone-application-credential":
            env = swift_server.os_env("application_credential")
            options = {"auth": swift_auth(env=env)}
            known, server_proxy = [env["OS_APPLICATION_CREDENTIAL_SECRET"]], "keystone"
            env_bad = {**env, "OS_APPLICATION_CREDENTIAL_SECRET": bad}
            wrong = swift_auth(env=env_bad).get
        else:
            storage_url, token = swift_server.get_token()
            options = {"preauthurl": storage_url, "preauthtoken": token}
            known = [token]
            wrong = reads(SwiftStore, container, "", {**options, "preauthtoken": bad})
        store = SwiftStore(container, kind, options)
        fs = SwiftFileSystem(**options, skip_instance_cache=True)

        def fail_next(status: int, count: int) -> None:
            swift_server.inject_faults(
                status=status, count=count, path_contains=f"/{container}/", proxy=server_proxy
            )

    else:
        # S3 kinds go through the fault proxy in front of the server.
        endpoint = proxy.url
        access, secret = s3_server.admin_access_key, s3_server.admin_secret_key
        if kind in ("sts-token", "sts-token-file"):
            token = oidc_issuer.mint()
            options = {"endpoint_url": endpoint, "token": token}
            if kind == "sts-token-file":
                path = tmp_path / "token"
                token = oidc_issuer.write_token(path)
                options = {"endpoint_url": endpoint, "token_file": path}
            known = [token]
            bad = oidc_issuer.mint(bad_signature=True)
            wrong = STSCredentials(endpoint, bad).get
        elif kind == "static-keys":
            options = {"endpoint_url": endpoint, "key": access, "secret": secret}
            known = [secret]
            wrong = reads(MinioStore, container, endpoint_url=endpoint, key=access, secret=bad)
        elif kind == "aws-profile":
            profiles = tmp_path / "credentials"
            profiles.write_text(
                f"[zssec]\naws_access_key_id = {access}\naws_secret_access_key = {secret}\n"
                f"[zsbad]\naws_access_key_id = {access}\naws_secret_access_key = {bad}\n"
            )
            monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(profiles))
            options = {"endpoint_url": endpoint, "profile": "zssec"}
            known = [secret]
            wrong = reads(MinioStore, container, endpoint_url=endpoint, profile="zsbad")
        else:
            with_keys = endpoint.replace("://", f"://{access}:{secret}@")
            monkeypatch.setenv("MC_HOST_zssec", with_keys)
            monkeypatch.setenv("MC_HOST_zsbad", endpoint.replace("://", f"://{access}:{bad}@"))
            options = {"mc_alias": "zssec"}
            known = [secret, with_keys]
            wrong = reads(MinioStore, container, mc_alias="zsbad")
        store = MinioStore(container, kind, **options)
        fs = MinioFileSystem(**options, skip_instance_cache=True)

        def fail_next(status: int, count: int) -> None:
            proxy.inject("status", status=status, count=count, path_contains=f"/{container}/")

    held = [store, fs, getattr(store, "client", None) or store.credentials]
    yield Subject(store, fs, container, fail_next, wrong, bad, known, held)
    swift_server.clear_faults()
    proxy.clear()


@pytest.mark.parametrize("subject", KINDS, indirect=True)
def test_no_secret_in_reprs_logs_errors_or_tracebacks(
    subject: Subject,
    swift_server: SwiftServer,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
    figures: Figures,
) -> None:
    errors: dict[str, BaseException] = {}

    def must_fail(name: str, call: Callable[[], Any]) -> None:
        try:
            call()
        except Exception as e:
            errors[name] = e
        else:
            pytest.fail(f"{name}: the call did not fail")

    store, fs = subject.store, subject.fs
    root = f"{subject.root}/{store.prefix}"
    with caplog.at_level(logging.DEBUG):
        store["k"] = b"value"
        assert store["k"] == b"value"
        zarr.create_array(store, name="a", shape=(4,), chunks=(2,), dtype="i4")[:] = 3
        assert zarr.open_array(store, path="a", mode="r")[:].tolist() == [3] * 4
        fs.pipe_file(f"{root}/f", b"through fsspec")
        assert fs.cat_file(f"{root}/f") == b"through fsspec"
        assert fs.ls(root)
        if isinstance(getattr(store, "client", None) and store.client.auth, TempAuth):
            swift_server.invalidate_tokens()  # revoked: the client logs in again, and logs it
            assert store["k"] == b"value"
        must_fail("wrong secret", subject.wrong)
        subject.fail_next(403, 1)
        must_fail("refused (store)", lambda: store["k"])
        subject.fail_next(403, 1)
        must_fail("refused (fsspec)", lambda: fs.cat_file(f"{root}/f"))
        subject.fail_next(500, 0)
        must_fail("server error", lambda: store["k"])
    assert isinstance(errors["refused (store)"], PermissionError)
    assert isinstance(errors["refused (fsspec)"], PermissionError)
    texts = [repr(x) for x in subject.held] + [str(x) for x in subject.held]
    for error in errors.values():
        texts += [str(error), repr(error), repr(error.args)]
        texts.append("".join(traceback.format_exception(error)))
    for record in caplog.records:
        texts.append(record.getMessage())
        if record.exc_info:
            texts.append(logging.Formatter().formatException(record.exc_info))
    assert caplog.records  # (at DEBUG: every library's records are kept)
    values = subject.secrets()
    assert all(len(v) >= 7 for v in values)
    blob = "\n".join(texts)
    leaked = [v[:6] + "..." for v in values if v in blob]
    assert not leaked, f"secrets found in reprs, logs or errors: {leaked}"
    figures.add(
        section="secrets",
        backend="swift" if isinstance(store, SwiftStore) else "s3",
        kind=request.node.callspec.id,
        secret_values_searched=len(set(values)),
        texts_searched=len(texts),
        log_records_searched=len(caplog.records),
        errors_searched=len(errors),
        secrets_found=0,
    )


def test_no_secret_in_the_servers_own_logs(
    swift_server: SwiftServer,
    s3_server: S3Server,
    oidc_issuer: OIDCIssuer,
    container: str,
    figures: Figures,
) -> None:
    """The dev servers log every request (the Swift proxies with ``reveal_sensitive_prefix =
    0``): the tokens used through tempauth and Keystone, and the OIDC token and STS keys used
    on S3, appear in none of their lines."""
    tempauth = TempAuth(swift_server.auth_url, USER, swift_server.users[USER])
    keystone = swift_auth(env=swift_server.os_env("password"))
    values = []
    for auth in (tempauth, keystone):
        store = SwiftStore(container, "logs", {"auth": auth})
        store["k"] = b"v"
        assert store["k"] == b"v"
        token = auth.get().token.reveal()  # type: ignore[union-attr]
        values += [token, token[:16]]
    token = oidc_issuer.mint()
    bucket_store = MinioStore(container, "logs", endpoint_url=s3_server.endpoint, token=token)
    bucket_store["k"] = b"v"
    assert bucket_store["k"] == b"v"
    creds = bucket_store.credentials.get()
    values += [token, creds.secret_key.reveal(), creds.session_token.reveal()]  # type: ignore[union-attr]
    logs = [swift_server.dir / "log" / name for name in ("proxy.log", "keystone-proxy.log")]
    text = "".join(path.read_text(errors="replace") for path in [*logs, s3_server.log])
    assert container in text  # the requests are there
    assert not [v[:6] for v in values if v in text]
    figures.add(section="secrets", backend="swift", server_log_lines=text.count("\n"))


def test_tls_verification_is_on_by_default_and_a_ca_bundle_is_honoured(
    swift_server: SwiftServer,
    s3_server: S3Server,
    oidc_issuer: OIDCIssuer,
    tls_cert: tuple[Path, Path],
    container: str,
    figures: Figures,
) -> None:
    """Every kind verifies certificates unless told otherwise (the bad-input cases show each
    refusing a self-signed server); given the CA bundle, the same servers work."""
    defaults = [
        TempAuth("https://h/auth/v1.0", "a:b", "k"),
        KeystoneAuth("https://h:5000/v3", username="u", password="p"),
        PreAuth("https://h/v1/AUTH_a", "t"),
        STSCredentials("https://h", "t.t.t"),
    ]
    assert all(auth.verify is True for auth in defaults)
    assert MinioStore("b", endpoint_url="https://h", key="a", secret="b")._verify is True
    ca = str(tls_cert[0])
    swift_tls = tls_proxy(swift_server.proxy_url, tls_cert)
    s3_tls = tls_proxy(s3_server.endpoint, tls_cert)
    auth = TempAuth(f"{swift_tls}/auth/v1.0", USER, swift_server.users[USER], verify=ca)
    store = SwiftStore(
        container,
        "tls",
        {
            "preauthurl": f"{swift_tls}/v1/AUTH_test",
            "preauthtoken": auth.get().token.reveal(),  # type: ignore[union-attr]
            "cacert": ca,
        },
    )
    store["k"] = b"over TLS"
    assert store["k"] == b"over TLS"
    for options in (
        {"token": oidc_issuer.mint()},
        {"key": s3_server.admin_access_key, "secret": s3_server.admin_secret_key},
    ):
        bucket_store = MinioStore(container, "tls", endpoint_url=s3_tls, verify=ca, **options)
        bucket_store["k"] = b"over TLS"
        assert bucket_store["k"] == b"over TLS"
    fs = MinioFileSystem(
        endpoint_url=s3_tls,
        verify=ca,
        skip_instance_cache=True,
        key=s3_server.admin_access_key,
        secret=s3_server.admin_secret_key,
    )
    assert fs.cat_file(f"{container}/tls/k") == b"over TLS"
    figures.add(section="secrets", backend="both", tls_kinds_verified_by_default=len(defaults) + 1)


def test_a_token_file_others_can_read_is_warned_about(
    s3_server: S3Server,
    oidc_issuer: OIDCIssuer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    figures: Figures,
) -> None:
    # A file each: stores opened with the same token file share its keys (and read it once).
    tight, loose, found = (tmp_path / name for name in ("tight", "loose", "found"))
    for path in (tight, loose, found):
        oidc_issuer.write_token(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TokenFilePermissionWarning)  # 0600: no warning
        MinioStore("b", endpoint_url=s3_server.endpoint, token_file=tight).credentials.get()
    loose.chmod(0o644)
    with pytest.warns(
        TokenFilePermissionWarning, match=f"readable by other users; run `chmod 600 {loose}`"
    ):
        MinioStore("b", endpoint_url=s3_server.endpoint, token_file=loose).credentials.get()
    found.chmod(0o644)
    monkeypatch.setenv("BEARER_TOKEN_FILE", str(found))  # found by discovery: warned too
    with pytest.warns(TokenFilePermissionWarning, match="chmod 600"):
        MinioStore("b", endpoint_url=s3_server.endpoint).credentials.get()
    figures.add(section="secrets", backend="s3", loose_token_files_warned=2)
