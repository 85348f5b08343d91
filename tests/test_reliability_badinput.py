"""Bad input, table-driven: every case must fail with an error of a known type whose message
names the problem and the fix, and leave what is stored as it was. Where a case is not
specific to one backend it runs on both."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import pytest
import zarr
from _figures import Figures, figures_fixture  # noqa: F401 (fixture)
from backends import (  # noqa: F401 (fixtures)
    BACKENDS,
    FAST,
    Backend,
    keystone_options,
    make_backend,
    tls_cert_fixture,
    tls_proxy,
)
from fixtures_swift import memory_dir
from zarr.abc.store import OffsetByteRequest, RangeByteRequest, SuffixByteRequest

from zarrstores.auth import (
    AuthConnectionError,
    ConfigurationError,
    STSError,
    SwiftAuthError,
    TokenError,
    TokenExpiredError,
    TokenNotFoundError,
    swift_auth,
)
from zarrstores.devserver._proc import free_port
from zarrstores.devserver.faultproxy import FaultProxy
from zarrstores.devserver.rgw import RGWServer
from zarrstores.devserver.s3 import S3Server
from zarrstores.devserver.swift import SwiftServer
from zarrstores.minio import MinioFileSystem, MinioStore
from zarrstores.swift import SwiftError, SwiftStore

MiB = 1 << 20
ORIGINAL = b"original value"


@dataclass
class Ctx:
    """What a case can use: the backend it runs on (with ``seed/k`` = ``ORIGINAL`` and a small
    array ``seed/arr``), the test's fixtures and a scratch directory."""

    b: Backend
    request: pytest.FixtureRequest
    tmp: Path
    monkeypatch: pytest.MonkeyPatch

    @property
    def store(self) -> Any:
        return self.b.store("seed")

    def fixture(self, name: str) -> Any:
        return self.request.getfixturevalue(name)

    @property
    def rgw(self) -> RGWServer | None:
        """The backend's Ceph RGW, if it runs on one."""
        server = getattr(self.b, "server", None)
        return server if isinstance(server, RGWServer) else None

    @property
    def swift_server(self) -> SwiftServer | RGWServer:
        return self.rgw or self.fixture("swift_server")

    @property
    def s3_server(self) -> S3Server | RGWServer:
        return self.rgw or self.fixture("s3_server")

    def tls(self, url: str) -> str:
        """``url``'s server behind HTTPS with a self-signed certificate."""
        return tls_proxy(url, self.fixture("tls_cert"))

    def swift(self, container: str | None = None, **options: Any) -> SwiftStore:
        """A SwiftStore (on the case's container unless given) with these storage options."""
        return SwiftStore(
            self.b.container if container is None else container, "seed", {"retry": FAST, **options}
        )

    def s3(self, bucket: str | None = None, **options: Any) -> MinioStore:
        """A MinioStore (on the case's bucket unless given; the server's endpoint unless
        given)."""
        options.setdefault("endpoint_url", self.s3_server.endpoint)
        if self.rgw:
            options.setdefault("role_arn", self.rgw.readwrite_role_arn)
        return MinioStore(
            self.b.container if bucket is None else bucket, "seed", retry=FAST, **options
        )

    def tempauth(self, **options: Any) -> dict[str, Any]:
        """storage_options for tempauth (``user``, ``authurl`` or ``key`` overridden)."""
        user = options.pop("user", "test:tester")
        key = self.swift_server.users.get(user, "not-the-key")
        return {"authurl": self.swift_server.auth_url, "user": user, "key": key, **options}

    def keystone(self, **changes: str) -> dict[str, Any]:
        """storage_options for Keystone v3 with a password (``key=`` etc. overridden)."""
        return keystone_options(self.swift_server, **changes)

    def token(self, **mint: Any) -> str:
        return self.fixture("oidc_issuer").mint(**mint)

    def token_file(self, content: bytes | None) -> Path:
        path = self.tmp / f"token-{uuid.uuid4().hex[:6]}"
        if content is not None:
            path.write_bytes(content)
            path.chmod(0o600)
        return path

    def admin_keys(self) -> dict[str, str]:
        return {"key": self.s3_server.admin_access_key, "secret": self.s3_server.admin_secret_key}

    def unreachable(self) -> str:
        return f"http://127.0.0.1:{free_port()}"


def put(store: Any, key: str = "k", value: bytes = b"changed") -> None:
    store[key] = value


def get(store: Any, key: str = "k") -> Any:
    return store[key]


def put_key(key: str) -> Callable[[Ctx], None]:
    return lambda c: put(c.store, key)


def ranged(request: Any) -> Callable[[Ctx], Any]:
    return lambda c: c.store.get_sync("k", byte_range=request)


def on_both(swift: Callable[[Ctx], Any], s3: Callable[[Ctx], Any]) -> Callable[[Ctx], Any]:
    """The same bad input, spelled for each backend."""
    return lambda c: swift(c) if c.b.kind == "swift" else s3(c)


def put_bucket(name: str) -> Callable[[Ctx], None]:
    return lambda c: put(c.s3(name, token=c.token()))


def no_token_anywhere(c: Ctx) -> MinioStore:
    """A store with no token given, in an environment where discovery finds none."""
    for var in ("BEARER_TOKEN", "BEARER_TOKEN_FILE", "XDG_RUNTIME_DIR", "AWS_ACCESS_KEY_ID"):
        c.monkeypatch.delenv(var, raising=False)
    c.monkeypatch.setenv("HOME", str(c.tmp))
    c.monkeypatch.chdir(c.tmp)
    # /tmp/bt_u<uid> is shared by everything on this machine: look for a uid nobody has.
    c.monkeypatch.setattr(os, "getuid", lambda: 987654)
    return c.s3()


def mc_alias(c: Ctx, value: str | None) -> MinioStore:
    c.monkeypatch.setenv("MC_CONFIG_DIR", str(c.tmp))  # no mc config there
    if value is not None:
        c.monkeypatch.setenv("MC_HOST_zsbad", value)
    return c.s3(endpoint_url=None, mc_alias="zsbad")


def wrong_application_credential(c: Ctx) -> None:
    env = c.swift_server.os_env("application_credential")
    env["OS_APPLICATION_CREDENTIAL_SECRET"] = "not-the-secret"
    put(c.swift(auth=swift_auth(env=env)))


def tls_fs(c: Ctx) -> None:
    fs = MinioFileSystem(
        endpoint_url=c.tls(c.s3_server.endpoint),
        skip_instance_cache=True,
        config_kwargs={"retries": {"max_attempts": 1}},
        **c.admin_keys(),
    )
    fs.pipe_file(f"{c.b.container}/seed/k", b"changed")


def over_limit(c: Ctx) -> None:
    """2 MiB on a Swift that takes 1 MiB in one piece and hides ``/info`` (as clusters with
    ``expose_info = false`` do), so the client cannot know the limit."""
    server: SwiftServer = c.fixture("small_swift")
    proxy = FaultProxy(server.proxy_url).start()
    c.request.addfinalizer(proxy.stop)
    proxy.inject("status", status=404, count=0, method="GET", path_contains="/info")
    options = {"preauthurl": f"{proxy.url}/v1/AUTH_test", "preauthtoken": server.get_token()[1]}
    try:
        put(SwiftStore("big", "", options), "big", b"x" * (2 * MiB))
    finally:
        # The fix the message names works: the same write, as segments.
        fixed = SwiftStore("big", "", {**options, "segment_size": MiB // 2})
        fixed["big"] = b"x" * (2 * MiB)
        assert fixed["big"] == b"x" * (2 * MiB)


@dataclass(frozen=True)
class Case:
    name: str
    call: Callable[[Ctx], Any]
    error: type[BaseException] | tuple[type[BaseException], ...]
    match: str
    """What the message must say: the problem, then the fix."""
    backends: tuple[str, ...] = ("swift", "s3")


SWIFT, S3 = ("swift",), ("s3",)
# One message for every request, auth or data: the problem, then verify=/cacert= (file or dir).
TLS = "TLS verification failed for .*verify='/path/to/ca.pem' or cacert="
URL = r"not an http\(s\) URL; pass e\.g\."
STS_REFUSED = "AssumeRoleWithWebIdentity .* failed.*token"
READ_ONLY = "read-only mode.*open it with read_only=False"

CASES = [
    # -- keys -----------------------------------------------------------------------------------
    Case("empty key read", lambda c: get(c.store, ""), ValueError, "empty key .*a key names"),
    Case("empty key write", put_key(""), ValueError, "empty key .*a key names"),
    Case("key '/'", put_key("/"), ValueError, "empty key .*a key names"),
    Case("key with NUL", put_key("a\x00b"), ValueError, "NUL.*remove it"),
    Case("key not Unicode", put_key("\udcff"), ValueError, "not valid Unicode.*decode"),
    Case("key of 1100 bytes", put_key("k" * 1100), OSError, "1024 bytes.*shorter"),
    Case("key ending in '/'", put_key("a/"), ValueError, "ends with '/'.*remove", S3),
    Case("key with '//'", put_key("a//b"), ValueError, "empty path segment.*single", S3),
    Case("key with '..'", put_key("a/../b"), ValueError, r"'\.\.' path segment.*without", S3),
    Case("key with '.'", put_key("./b"), ValueError, r"'\.' or '\.\.' path segment.*without", S3),
    Case("key with a tab", put_key("a\tb"), ValueError, r"control character \('\\t'\).*remove", S3),
    # -- byte ranges ----------------------------------------------------------------------------
    Case("inverted range", ranged(RangeByteRequest(5, 2)), ValueError, "inverted.*0 <= start"),
    Case("negative range", ranged(RangeByteRequest(-3, 2)), ValueError, "negative.*SuffixByteR"),
    Case("negative offset", ranged(OffsetByteRequest(-1)), ValueError, "negative.*offset >= 0"),
    Case("negative suffix", ranged(SuffixByteRequest(-1)), ValueError, "negative.*n >= 0"),
    # -- containers and buckets -----------------------------------------------------------------
    Case(
        "no container name",
        on_both(lambda c: c.swift("", **c.tempauth()), lambda c: c.s3("", token=c.token())),
        ValueError,
        "no (container|bucket) given: pass the",
    ),
    Case(
        "container name with '/'",
        on_both(lambda c: c.swift("a/b", **c.tempauth()), lambda c: c.s3("a/b", token=c.token())),
        ValueError,
        "got 'a/b': pass the part after the first '/' as prefix=",
    ),
    Case(
        "container name of 300 bytes",
        lambda c: put(c.swift("x" * 300, **c.tempauth())),
        ConfigurationError,
        "has 300 bytes; Swift allows at most 256",
        SWIFT,
    ),
    *(
        Case(f"bucket name {name!r}", put_bucket(name), ConfigurationError, "name: use 3-63", S3)
        # the last three botocore refuses before sending, and obstore would panic on the space
        for name in ("ab", "Bad_Bucket", "b" * 64, "bad..name", "-bad", "my data", "dätä", "x!")
    ),
    Case(
        "bucket missing",
        put_bucket(f"missing-{uuid.uuid4().hex[:8]}"),
        FileNotFoundError,
        "does not exist.*create it first",
        S3,
    ),
    # -- malformed URLs -------------------------------------------------------------------------
    Case(
        "auth URL without scheme",
        lambda c: c.swift(authurl="127.0.0.1:8080/auth/v1.0", user="a:b", key="k"),
        ConfigurationError,
        f"authurl .* {URL}",
        SWIFT,
    ),
    Case(
        "auth URL ftp://",
        lambda c: c.swift(authurl="ftp://127.0.0.1/auth/v1.0", user="a:b", key="k"),
        ConfigurationError,
        f"authurl .* {URL}",
        SWIFT,
    ),
    Case(
        "Keystone URL without scheme",
        lambda c: c.swift(**c.keystone(authurl="keystone:5000/v3")),
        ConfigurationError,
        f"auth_url .* {URL}",
        SWIFT,
    ),
    Case(
        "storage URL not a URL",
        lambda c: c.swift(preauthurl="not a url", preauthtoken="t"),
        ConfigurationError,
        f"storage_url .* {URL}",
        SWIFT,
    ),
    Case(
        "endpoint without scheme",
        lambda c: c.s3(endpoint_url="127.0.0.1:9000", token=c.token()),
        ConfigurationError,
        f"endpoint_url .* {URL}",
        S3,
    ),
    Case(
        "endpoint ftp://",
        lambda c: c.s3(endpoint_url="ftp://127.0.0.1", token=c.token()),
        ConfigurationError,
        f"endpoint_url .* {URL}",
        S3,
    ),
    Case(
        "endpoint with user and password",
        lambda c: c.s3(endpoint_url="http://AKIAXYZ:s3cr3tpw@127.0.0.1:9000", token=c.token()),
        ConfigurationError,
        r"^endpoint_url 'http://\*\*\*@127\.0\.0\.1:9000' holds a user or password(?!.*s3cr3t)",
        S3,
    ),
    Case(
        "endpoint with a query",
        lambda c: c.s3(endpoint_url=c.s3_server.endpoint + "?region=x", token=c.token()),
        ConfigurationError,
        "endpoint_url .* has a query or fragment: pass the URL without",
        S3,
    ),
    Case(
        "storage URL with a port not a number",
        lambda c: c.swift(preauthurl="http://127.0.0.1:80a/v1/AUTH_x", preauthtoken="t"),
        ConfigurationError,
        "storage_url .* has a port that is not a number",
        SWIFT,
    ),
    Case(
        "auth URL of another service",
        lambda c: c.swift(**c.tempauth(authurl=c.swift_server.proxy_url + "/wrong")),
        SwiftAuthError,
        "without X-Storage-Url: is it a Swift v1 auth URL",
        SWIFT,
    ),
    Case(
        "Keystone URL of another service",
        lambda c: c.swift(**c.keystone(authurl=c.swift_server.proxy_url + "/v3")),
        SwiftAuthError,
        r"answered \d+.*is it Keystone's v3 endpoint",
        SWIFT,
    ),
    Case(
        "endpoint of another service",
        lambda c: c.s3(endpoint_url=c.fixture("oidc_issuer").url, token=c.token()),
        STSError,
        "no STS XML: is it an S3/MinIO endpoint with STS",
        S3,
    ),
    # -- tokens (OIDC -> STS) -------------------------------------------------------------------
    Case(
        "token missing",
        no_token_anywhere,
        TokenNotFoundError,
        "(?s)no OIDC access token found.*Set BEARER_TOKEN_FILE",
        S3,
    ),
    Case("token empty", lambda c: c.s3(token=""), TokenError, "is empty.*sts-wire", S3),
    Case("token garbage", lambda c: c.s3(token="not-a-jwt"), TokenError, "not a JWT.*OIDC", S3),
    Case(
        "token expired",
        lambda c: c.s3(token=c.token(expires_in=-60)),
        TokenExpiredError,
        "expired at .* ago.*sts-wire",
        S3,
    ),
    Case(
        "token not yet valid",
        lambda c: c.s3(token=c.token(not_before=600)),
        STSError,
        STS_REFUSED,
        S3,
    ),
    Case(
        "token badly signed",
        lambda c: c.s3(token=c.token(bad_signature=True)),
        STSError,
        STS_REFUSED,
        S3,
    ),
    Case(
        "token for another audience",
        lambda c: c.s3(token=c.token(aud="someone-else")),
        STSError,
        STS_REFUSED,
        S3,
    ),
    Case(
        "token file missing",
        lambda c: c.s3(token_file=c.token_file(None)),
        TokenNotFoundError,
        "does not exist.*sts-wire",
        S3,
    ),
    Case(
        "token file empty",
        lambda c: c.s3(token_file=c.token_file(b"")),
        TokenError,
        "is empty.*sts-wire",
        S3,
    ),
    Case(
        "token file a directory",
        lambda c: c.s3(token_file=c.tmp),
        TokenError,
        "is a directory: name the token file in it",
        S3,
    ),
    Case(
        "token file not text",
        lambda c: c.s3(token_file=c.token_file(b"\xff\xfe\x00bad")),
        TokenError,
        "cannot be read.*check its owner and permissions",
        S3,
    ),
    Case(
        "token and token file",
        lambda c: c.s3(token=c.token(), token_file=c.token_file(b"x")),
        ConfigurationError,
        "pass either token or token_file, not both",
        S3,
    ),
    Case(
        "session too short",
        lambda c: c.s3(token=c.token(), duration=60),
        ConfigurationError,
        "duration=60 is outside 900..43200",
        S3,
    ),
    # -- passwords and keys ---------------------------------------------------------------------
    Case(
        "wrong password (tempauth)",
        lambda c: put(c.swift(**c.tempauth(key="not-the-key"))),
        SwiftAuthError,
        "rejected user 'test:tester'.*check ST_USER / ST_KEY",
        SWIFT,
    ),
    Case(
        "unknown user (tempauth)",
        lambda c: put(c.swift(**c.tempauth(user="test:nobody"))),
        SwiftAuthError,
        "rejected user 'test:nobody'.*check ST_USER / ST_KEY",
        SWIFT,
    ),
    Case(
        "user without account (tempauth)",
        lambda c: c.swift(**c.tempauth(user="tester")),
        ConfigurationError,
        "must be of the form 'account:user'",
        SWIFT,
    ),
    Case(
        "auth URL without key",
        lambda c: c.swift(authurl="http://127.0.0.1/auth/v1.0", user="a:b"),
        ConfigurationError,
        "without user= and key=",
        SWIFT,
    ),
    Case(
        "wrong password (Keystone)",
        lambda c: put(c.swift(**c.keystone(key="not-the-password"))),
        SwiftAuthError,
        "rejected the password credentials: check OS_USERNAME/OS_PASSWORD",
        SWIFT,
    ),
    Case(
        "wrong application credential secret",
        wrong_application_credential,
        SwiftAuthError,
        "rejected the v3applicationcredential credentials: check .*application credential",
        SWIFT,
    ),
    Case(
        "garbage pre-auth token",
        lambda c: put(
            c.swift(preauthurl=c.swift_server.storage_url(), preauthtoken="AUTH_tk" + "0" * 32)
        ),
        SwiftAuthError,
        "expired or was revoked. Get a new one",
        SWIFT,
    ),
    Case(
        "wrong secret key",
        lambda c: put(c.s3(key=c.s3_server.admin_access_key, secret="not-the-secret")),
        PermissionError,
        "SignatureDoesNotMatch.*check secret=",
        S3,
    ),
    Case(
        "unknown access key",
        lambda c: put(c.s3(key="AKIAUNKNOWNKEY", secret="not-the-secret")),
        PermissionError,
        "InvalidAccessKeyId.*check key=",
        S3,
    ),
    Case(
        "key without secret",
        lambda c: c.s3(key="AKIAUNKNOWNKEY"),
        ConfigurationError,
        "need both key= and secret=",
        S3,
    ),
    Case(
        "unknown mc alias",
        lambda c: mc_alias(c, None),
        ConfigurationError,
        "no MC_HOST_zsbad variable and no mc config.*create it with `mc alias set",
        S3,
    ),
    Case(
        "malformed MC_HOST",
        lambda c: mc_alias(c, "http://no-credentials@127.0.0.1:1"),
        ConfigurationError,
        r"MC_HOST_zsbad is not of the form http\(s\)://ACCESS_KEY:SECRET_KEY",
        S3,
    ),
    # -- rights ---------------------------------------------------------------------------------
    Case(
        "read-only store writing",
        lambda c: put(c.b.store("seed", read_only=True)),
        ValueError,
        READ_ONLY,
    ),
    Case(
        "read-only store deleting",
        lambda c: c.b.store("seed", read_only=True).__delitem__("k"),
        ValueError,
        READ_ONLY,
    ),
    Case(
        "Swift user without rights writing",
        lambda c: put(c.swift(**c.tempauth(user="test:tester3"))),
        PermissionError,
        "403 Forbidden.*ask the container's owner for an ACL",
        SWIFT,
    ),
    Case(
        "read-only role writing",
        lambda c: put(c.s3(token=c.token(policy="readonly"))),
        PermissionError,
        "AccessDenied.*read-only access",
        S3,
    ),
    # -- unreachable ----------------------------------------------------------------------------
    Case(
        "auth server unreachable",
        lambda c: put(c.swift(**c.tempauth(authurl=c.unreachable() + "/auth/v1.0"))),
        AuthConnectionError,
        "cannot reach Swift auth .*check the URL and that the server is up",
        SWIFT,
    ),
    Case(
        "Swift option misspelt",  # went to Keystone, whose message listed only its options
        lambda c: put(c.swift(**c.tempauth(), max_concurency=4)),
        ConfigurationError,
        r"^unknown Swift storage option 'max_concurency' \(did you mean 'max_concurrency'\?\)\n",
        SWIFT,
    ),
    Case(
        "S3 option misspelt",
        lambda c: c.s3(token=c.token(), max_concurency=4),
        ConfigurationError,
        r"^unknown S3 storage option 'max_concurency' \(did you mean 'max_concurrency'\?\)\n",
        S3,
    ),
    Case(
        "minio:// option named as elsewhere",  # s3fs would have dropped it: the env's endpoint
        lambda c: fsspec.filesystem("minio", endpoint="http://elsewhere", skip_instance_cache=True),
        ConfigurationError,
        r"^unknown minio:// storage option 'endpoint' \(did you mean 'endpoint_url'\?\)\n",
        S3,
    ),
    Case(
        "Keystone unreachable, version discovered",  # keystoneauth warns at each attempt
        lambda c: put(
            c.swift(
                auth_type="password",  # keystoneauth's generic plugin: it asks for versions
                auth_url=c.unreachable() + "/v3",
                username="tester",
                password="testing",
                project_name="test",
                user_domain_name="Default",
                project_domain_name="Default",
            )
        ),
        AuthConnectionError,
        "cannot reach Keystone .*check the URL and that the server is up",
        SWIFT,
    ),
    Case(
        "Keystone unreachable",
        lambda c: put(c.swift(**c.keystone(authurl=c.unreachable() + "/v3"))),
        AuthConnectionError,
        "cannot reach Keystone .*check the URL and that the server is up",
        SWIFT,
    ),
    Case(
        "storage unreachable",
        lambda c: put(c.swift(preauthurl=c.unreachable() + "/v1/AUTH_test", preauthtoken="t")),
        SwiftError,
        "cannot reach Swift .*check the storage URL and that the server is up",
        SWIFT,
    ),
    Case(
        "STS endpoint unreachable",
        lambda c: put(c.s3(endpoint_url=c.unreachable(), token=c.token())),
        AuthConnectionError,
        "cannot reach the STS endpoint .*check endpoint_url and that the server is up",
        S3,
    ),
    Case(
        "S3 endpoint unreachable",
        lambda c: put(c.s3(endpoint_url=c.unreachable(), key="a", secret="b")),
        ConnectionError,
        "failed after 4 attempts.*check endpoint_url and that the server is up",
        S3,
    ),
    # -- TLS with a self-signed certificate (verification is on by default) ---------------------
    Case(
        "TLS: tempauth",
        lambda c: put(
            c.swift(**c.tempauth(authurl=c.tls(c.swift_server.proxy_url) + "/auth/v1.0"))
        ),
        AuthConnectionError,
        TLS,
        SWIFT,
    ),
    Case(
        "TLS: Keystone",
        lambda c: put(c.swift(**c.keystone(authurl=c.tls(c.swift_server.keystone_url) + "/v3"))),
        AuthConnectionError,
        TLS,
        SWIFT,
    ),
    Case(
        "TLS: storage URL",
        lambda c: put(
            c.swift(
                preauthurl=c.tls(c.swift_server.proxy_url) + "/v1/AUTH_test",
                preauthtoken=c.swift_server.get_token()[1],
            )
        ),
        SwiftError,
        TLS,
        SWIFT,
    ),
    Case(
        "TLS: STS",
        lambda c: put(c.s3(endpoint_url=c.tls(c.s3_server.endpoint), token=c.token())),
        AuthConnectionError,
        TLS,
        S3,
    ),
    Case(
        "TLS: static keys",
        lambda c: put(c.s3(endpoint_url=c.tls(c.s3_server.endpoint), **c.admin_keys())),
        ConnectionError,
        TLS,
        S3,
    ),
    Case("TLS: minio:// filesystem", tls_fs, ConnectionError, TLS, S3),
    # -- size -----------------------------------------------------------------------------------
    Case(
        "object above the size limit, no SLO",
        over_limit,
        SwiftError,
        "413.*max_file_size.*pass segment_size=",
        SWIFT,
    ),
]


@pytest.fixture(scope="module")
def small_swift(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwiftServer]:
    """A Swift whose objects may have at most 1 MiB (Swift's default is 5 GiB)."""
    with (
        memory_dir(tmp_path_factory, "small") as base,
        SwiftServer(base / "s", max_file_size=MiB) as s,
    ):
        yield s


@pytest.fixture(scope="module")
def seeded(request: pytest.FixtureRequest) -> Iterator[dict[str, Backend]]:
    """One container/bucket per backend for the module, holding ``seed/k`` and ``seed/arr``."""
    made = {name: make_backend(request, name) for name in BACKENDS}
    for b in made.values():
        store = b.store("seed")
        store["k"] = ORIGINAL
        zarr.create_array(store, name="arr", shape=(4,), chunks=(2,), dtype="i4")[:] = 7
    yield made
    for b in made.values():
        b.close()


# Cases for both protocols run on Ceph RGW too; those of one server's auth set-up do not.
PARAMS = [
    pytest.param(case, name, id=f"{case.name}-{name}")
    for case in CASES
    for name in (BACKENDS if case.backends == ("swift", "s3") else case.backends)
]


@pytest.mark.parametrize(("case", "backend_name"), PARAMS)
def test_bad_input_fails_clearly_and_changes_nothing(
    case: Case,
    backend_name: str,
    seeded: dict[str, Backend],
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    figures: Figures,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    b = seeded[backend_name]
    before = b.snapshot()
    ctx = Ctx(b, request, tmp_path, monkeypatch)
    with pytest.raises(case.error, match=case.match) as failure:
        result = case.call(ctx)
        if isinstance(result, SwiftStore | MinioStore):
            get(result)  # a store that was built: its first use must fail
    # Ours, not a library's own exception escaping from deep inside it.
    assert type(failure.value).__module__.startswith(("zarrstores", "builtins")), failure.value
    assert "panicked" not in capfd.readouterr().err  # nor a Rust panic printed on the way,
    # nor keystoneauth's warning at each attempt to reach a Keystone that does not answer
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "Failed to" in r.msg]
    monkeypatch.undo()
    assert b.snapshot() == before, "a failed call changed what was stored"
    assert b.raw_get("seed/k") == ORIGINAL
    figures.add(
        section="bad_input",
        backend=backend_name,
        case=case.name,
        bad_inputs=1,
        changed_stored_data=0,
    )


def test_the_table_has_at_least_40_cases() -> None:
    assert len(CASES) >= 40 and len(PARAMS) >= 60


@pytest.mark.parametrize("key", ["with space", "what?", "hash#tag", "100%", "ünï/cødé", "/leading"])
def test_odd_but_valid_keys_are_stored_under_exactly_that_name(
    key: str, seeded: dict[str, Backend], figures: Figures
) -> None:
    """Not errors: names with characters that URLs treat specially round-trip on every
    backend, as names and as content (a leading '/' is dropped, as zarr keys have none)."""
    for b in seeded.values():
        store = b.store("odd")
        store[key] = key.encode()
        assert store[key] == key.encode()
        name = "odd/" + key.lstrip("/")
        assert b.raw_get(name) == key.encode() and name in b.raw_keys("odd/")
        del store[key]
    figures.add(section="bad_input", backend="both", odd_keys_round_tripped=len(seeded))
