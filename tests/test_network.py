"""The network as research sites have it: every request through a forward proxy, NO_PROXY, a
site CA (by option, by environment variable, as a directory), a wrong CA, and redirects that
must not carry the token to another origin, a broken IPv6 route. Both backends, by store and
by URL."""

from __future__ import annotations

import json
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pytest
import xarray as xr
from backends import USER, fault_proxy, keystone_options
from fixtures_net import (
    STORAGE_HOST,
    BrokenIPv6Route,
    ForwardProxy,
    MalformedServer,
    NetworkEnv,
    PrivateCA,
    RedirectingOrigin,
    StaticFiles,
)
from yarl import URL
from zarr.abc.store import OffsetByteRequest, RangeByteRequest, SuffixByteRequest
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

from zarrstores import minio, swift
from zarrstores._retry import RetryPolicy
from zarrstores._transport import ssl_context
from zarrstores.auth import ConfigurationError, STSCredentials
from zarrstores.devserver._proc import free_port
from zarrstores.devserver.oidc import OIDCIssuer
from zarrstores.devserver.s3 import S3Server
from zarrstores.devserver.swift import SwiftServer
from zarrstores.minio import MinioStore
from zarrstores.swift import SwiftStore

BACKENDS = ["swift", "s3"]


def dataset() -> xr.Dataset:
    """14 chunks of data and coordinates."""
    data = np.arange(12 * 10, dtype="float32").reshape(12, 10)
    ds = xr.Dataset({"t": (("y", "x"), data)}, coords={"y": np.arange(12), "x": np.arange(10)})
    return ds.chunk({"y": 3, "x": 4})


def at_host(url: str, host: str) -> str:
    """``url`` with its host replaced."""
    return str(URL(url).with_host(host))


class Site:
    """One backend's location, reached through a counting front (``front.requests``: what the
    server side saw) at ``base`` (``host`` instead of 127.0.0.1, ``ca``: an HTTPS front):
    options for stores and URLs, and the container/bucket name."""

    def __init__(
        self,
        request: pytest.FixtureRequest,
        name: str,
        *,
        host: str = "127.0.0.1",
        ca: PrivateCA | None = None,
    ) -> None:
        self.name = name
        self.container = f"net-{uuid.uuid4().hex[:12]}"
        if name == "swift":
            server: SwiftServer = request.getfixturevalue("swift_server")
            target = server.proxy_url
        else:
            s3: S3Server = request.getfixturevalue("s3_server")
            issuer: OIDCIssuer = request.getfixturevalue("oidc_issuer")
            s3.admin_client().create_bucket(Bucket=self.container)
            target = s3.endpoint
        self.front = fault_proxy(target, cert=(ca.cert, ca.key) if ca else None)
        self.base = at_host(self.front.url, host)
        if name == "swift":
            self.options: dict[str, Any] = {
                "authurl": f"{self.base}/auth/v1.0",
                "user": USER,
                "key": server.users[USER],
                # tempauth names 127.0.0.1 itself: the data goes where the auth went
                "storage_url": f"{self.base}/v1/AUTH_test",
            }
        else:
            self.options = {"endpoint_url": self.base, "token": issuer.mint()}

    @property
    def protocol(self) -> str:
        return "swift" if self.name == "swift" else "minio"

    def store(self, prefix: str, **changes: Any) -> SwiftStore | MinioStore:
        options = {**self.options, **changes}
        if self.name == "swift":
            return SwiftStore(self.container, prefix, options)
        return MinioStore(self.container, prefix, **options)

    def url(self, prefix: str) -> str:
        return f"{self.protocol}://{self.container}/{prefix}"

    def fs(self, **changes: Any) -> Any:
        return fsspec.filesystem(
            self.protocol, **{**self.options, **changes}, skip_instance_cache=True
        )


def round_trip(site: Site, tag: str = "", **changes: Any) -> None:
    """to_zarr + open_zarr by store and by URL, make_public, ls."""
    ds = dataset()
    store = site.store(f"by-store{tag}", **changes)
    ds.to_zarr(store, mode="w", consolidated=False)
    xr.testing.assert_identical(xr.open_zarr(store, consolidated=False).load(), ds.load())
    options = {**site.options, **changes}
    ds.to_zarr(site.url(f"by-url{tag}"), mode="w", consolidated=False, storage_options=options)
    again = xr.open_zarr(site.url(f"by-url{tag}"), consolidated=False, storage_options=options)
    xr.testing.assert_identical(again.load(), ds.load())
    sharing = swift if site.name == "swift" else minio
    sharing.make_public(store)
    sharing.make_public(site.url(f"by-url{tag}"), options)
    assert sharing.is_public(site.url(f"by-url{tag}"), options)
    listed = site.fs(**changes).ls(site.container, detail=False)
    assert {p.rstrip("/").rsplit("/", 1)[-1] for p in listed} >= {f"by-store{tag}", f"by-url{tag}"}


@pytest.fixture(params=BACKENDS)
def proxied_site(request: pytest.FixtureRequest) -> Iterator[Site]:
    """A backend reachable only through the forward proxy (its host name resolves there only)."""
    yield Site(request, request.param, host=STORAGE_HOST)


def test_the_storage_host_is_known_only_to_the_proxy() -> None:
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo(STORAGE_HOST, 80)


@pytest.mark.parametrize("case", ["upper", "lower"])
def test_every_request_goes_through_the_proxy_from_the_environment(
    proxied_site: Site, forward_proxy: ForwardProxy, clean_network_env: NetworkEnv, case: str
) -> None:
    """HTTP_PROXY (or http_proxy) alone: auth, chunks, listing and sharing all go through it;
    a request that bypassed it could not resolve the storage host and would fail."""
    before, server_side = len(forward_proxy.requests()), proxied_site.front.requests
    name = "HTTP_PROXY" if case == "upper" else "http_proxy"
    clean_network_env.set(**{name: forward_proxy.url})
    round_trip(proxied_site)
    seen = forward_proxy.requests_since(before, proxied_site.front.requests - server_side)
    assert len(seen) >= 28  # 14 chunks written and read twice, at the least
    assert len(seen) == proxied_site.front.requests - server_side  # each one through the proxy
    assert all(STORAGE_HOST in line for line in seen)
    methods = {line.split()[0] for line in seen}
    assert {"GET", "PUT"} <= methods
    assert ("POST" if proxied_site.name == "swift" else "PUT") in methods  # ACL / policy


def test_every_request_goes_through_the_proxy_option(
    proxied_site: Site, forward_proxy: ForwardProxy, clean_network_env: NetworkEnv
) -> None:
    """``proxy=`` in the options, no environment: the same, auth requests included."""
    before, server_side = len(forward_proxy.requests()), proxied_site.front.requests
    round_trip(proxied_site, proxy=forward_proxy.url)
    seen = forward_proxy.requests_since(before, proxied_site.front.requests - server_side)
    assert len(seen) >= 28 and all(STORAGE_HOST in line for line in seen)
    assert len(seen) == proxied_site.front.requests - server_side
    auth = "GET" if proxied_site.name == "swift" else "POST"
    assert any(line.startswith(auth) for line in seen)


@pytest.mark.parametrize("by", ["store", "url"])
def test_a_credentials_provider_passed_with_proxy_is_left_as_it_was(
    request: pytest.FixtureRequest,
    by: str,
    forward_proxy: ForwardProxy,
    clean_network_env: NetworkEnv,
) -> None:
    """``credentials=`` an STS provider and ``proxy=``: the exchange goes through the proxy
    (the storage host resolves only there), by store and by minio:// URL, and the caller's
    provider keeps its own setting (another store given it without ``proxy=`` goes direct)."""
    site = Site(request, "s3", host=STORAGE_HOST)
    provider = STSCredentials(site.base, site.options["token"])
    before = len(forward_proxy.requests())
    if by == "store":
        store = MinioStore(
            site.container, "given", endpoint_url=site.base, credentials=provider,
            proxy=forward_proxy.url,
        )  # fmt: skip
        store["k"] = b"value"
        assert store["k"] == b"value"
        used = store.credentials
        assert store.with_read_only(True).credentials is used  # one cache for both
    else:
        fs = fsspec.filesystem(
            "minio", endpoint_url=site.base, credentials=provider, proxy=forward_proxy.url,
            skip_instance_cache=True,
        )  # fmt: skip
        fs.pipe_file(f"{site.container}/given/k", b"value")
        assert fs.cat_file(f"{site.container}/given/k") == b"value"
        used = fs.credentials
    assert provider.proxy is None and provider.exchanges == 0
    assert used.proxy == forward_proxy.url and used.exchanges == 1
    seen = forward_proxy.requests()[before:]
    assert any(line.startswith("POST") for line in seen)  # the STS exchange


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_proxy_that_does_not_answer_is_named_without_its_password(
    request: pytest.FixtureRequest, backend: str, clean_network_env: NetworkEnv
) -> None:
    """Auth and data requests through a proxy that is down: the first line says to check that
    proxy, shown as http://***@host:port, and stays under 200 characters."""
    dead = f"http://alice:pr0xy-pass@127.0.0.1:{free_port()}"
    site = Site(request, backend)
    if backend == "swift":
        fixed = {"preauthurl": f"{site.base}/v1/AUTH_test", "preauthtoken": "tk"}
        data = SwiftStore(site.container, "", {**fixed, "retry": QUICK, "proxy": dead})
    else:
        keys = {"key": "k", "secret": "s", "retry": QUICK, "proxy": dead}
        data = MinioStore(site.container, endpoint_url=site.base, **keys)
    for store in (data, site.store("p", proxy=dead)):  # the second logs in through it first
        with pytest.raises(OSError) as failure:
            store["k"]
        first, text = str(failure.value).splitlines()[0], str(failure.value)
        assert f"check the proxy http://***@127.0.0.1:{dead.rsplit(':', 1)[1]}" in first, first
        assert len(first) < 200 and "pr0xy-pass" not in text and "alice" not in text


@pytest.mark.parametrize("name", ["NO_PROXY", "no_proxy"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_no_proxy_is_respected(
    request: pytest.FixtureRequest,
    backend: str,
    name: str,
    forward_proxy: ForwardProxy,
    clean_network_env: NetworkEnv,
) -> None:
    """A host in NO_PROXY is reached directly, whether the proxy comes from the environment
    or from ``proxy=``."""
    site = Site(request, backend)
    clean_network_env.set(HTTP_PROXY=forward_proxy.url, **{name: "127.0.0.1,localhost"})
    before, server_side = len(forward_proxy.requests()), site.front.requests
    round_trip(site)
    round_trip(site, "-option", proxy=forward_proxy.url)
    assert forward_proxy.requests()[before:] == []
    assert site.front.requests - server_side >= 56


# -- TLS --------------------------------------------------------------------------------------
@pytest.fixture(params=BACKENDS)
def tls_site(request: pytest.FixtureRequest, private_ca: PrivateCA) -> Site:
    """A backend behind an HTTPS front whose certificate the site CA signed."""
    return Site(request, request.param, ca=private_ca)


def ca_option(site: Site, path: Path | str) -> dict[str, Any]:
    """The option naming a CA: ``cacert=`` for Swift (as swiftclient), ``verify=`` for S3."""
    return {"cacert": str(path)} if site.name == "swift" else {"verify": str(path)}


def write_and_read(site: Site, **changes: Any) -> None:
    store = site.store("tls", **changes)
    store["k"] = b"over TLS"
    assert store["k"] == b"over TLS"
    assert site.fs(**changes).cat_file(f"{site.container}/tls/k") == b"over TLS"


def test_ca_given_as_option(
    tls_site: Site, private_ca: PrivateCA, clean_network_env: NetworkEnv
) -> None:
    write_and_read(tls_site, **ca_option(tls_site, private_ca.ca))


def test_ca_given_as_a_directory(
    tls_site: Site, private_ca: PrivateCA, clean_network_env: NetworkEnv
) -> None:
    write_and_read(tls_site, **ca_option(tls_site, private_ca.directory))


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "AWS_CA_BUNDLE"])
def test_ca_given_by_environment(
    tls_site: Site, private_ca: PrivateCA, clean_network_env: NetworkEnv, variable: str
) -> None:
    """Each variable alone is the CA of every request, auth (tempauth, STS) included."""
    clean_network_env.set(**{variable: str(private_ca.ca)})
    write_and_read(tls_site)


def test_wrong_or_no_ca_is_a_clear_error(
    tls_site: Site, other_ca: PrivateCA, clean_network_env: NetworkEnv
) -> None:
    for changes in ({}, ca_option(tls_site, other_ca.ca)):
        with pytest.raises(OSError) as failure:
            tls_site.store("tls", **changes)["k"] = b"x"
        message = str(failure.value).splitlines()[0]
        assert "TLS verification failed" in message and "verify=" in message, message
        assert "cacert=" in message and len(message) < 200


def test_a_ca_file_rewritten_is_read_again(
    tls_site: Site,
    private_ca: PrivateCA,
    other_ca: PrivateCA,
    clean_network_env: NetworkEnv,
    tmp_path: Path,
) -> None:
    """Stores share one TLS context while their CA file stays as it is (loading a CA store
    takes ~20 ms); the site CA written over a wrong one is trusted by the next store."""
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(other_ca.ca.read_bytes())
    with pytest.raises(OSError, match="TLS verification failed"):
        tls_site.store("tls", **ca_option(tls_site, bundle))["k"] = b"x"
    assert ssl_context(bundle) is ssl_context(str(bundle))
    bundle.write_bytes(private_ca.ca.read_bytes())
    assert ssl_context(bundle).get_ca_certs() != []
    write_and_read(tls_site, **ca_option(tls_site, bundle))


def test_through_the_proxy_over_tls(
    request: pytest.FixtureRequest,
    private_ca: PrivateCA,
    forward_proxy: ForwardProxy,
    clean_network_env: NetworkEnv,
) -> None:
    """HTTPS_PROXY and a site CA together: CONNECT through the proxy, the CA from the
    environment, for both backends."""
    clean_network_env.set(HTTPS_PROXY=forward_proxy.url, SSL_CERT_FILE=str(private_ca.ca))
    for backend in BACKENDS:
        site = Site(request, backend, host=STORAGE_HOST, ca=private_ca)
        before = len(forward_proxy.requests())
        write_and_read(site)
        seen = forward_proxy.requests()[before:]
        assert seen and all(line.startswith("CONNECT") for line in seen), seen


# -- a broken IPv6 route ----------------------------------------------------------------------
DUAL_STACK = {
    "swift": "GET /auth/v1.0",  # tempauth: requests
    "swift-keystone": "POST /v3/auth/tokens",  # keystoneauth1 (on requests)
    "s3": "POST /",  # the STS exchange: requests
}


@pytest.mark.parametrize("backend", list(DUAL_STACK))
def test_a_broken_ipv6_route_falls_back_to_ipv4(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path, clean_network_env: NetworkEnv
) -> None:
    """The storage (and auth) host resolves to ::1 first and 127.0.0.1 second, and connections
    to ::1 hang: auth, chunk writes and reads, listing and sharing all succeed, over IPv4 (the
    only address that answers). A client without fallback would start every attempt, retries
    included, on ::1 and never get through."""
    container = f"dual-{uuid.uuid4().hex[:12]}"
    routes: list[BrokenIPv6Route] = []

    def route(target: str) -> BrokenIPv6Route:
        routes.append(BrokenIPv6Route(target, tmp_path))
        return routes[-1]

    try:
        if backend == "s3":
            s3: S3Server = request.getfixturevalue("s3_server")
            issuer: OIDCIssuer = request.getfixturevalue("oidc_issuer")
            s3.admin_client().create_bucket(Bucket=container)
            auth = data = route(s3.endpoint)
            options: dict[str, Any] = {"endpoint_url": data.url, "token": issuer.mint()}
        elif backend == "swift":
            server: SwiftServer = request.getfixturevalue("swift_server")
            auth = data = route(server.proxy_url)
            options = {
                "authurl": f"{data.url}/auth/v1.0",
                "user": USER,
                "key": server.users[USER],
                "storage_url": f"{data.url}/v1/AUTH_test",
            }
        else:
            server = request.getfixturevalue("swift_server")
            auth, data = route(server.keystone_url), route(server.keystone_proxy_url)
            options = keystone_options(
                server,
                authurl=f"{auth.url}/v3",
                storage_url=f"{data.url}/v1/AUTH_{server.keystone_project_id}",
            )
        assert all(r.ipv6_hangs() for r in routes)  # hangs, not refused: a broken route
        job = {"backend": backend, "container": container, "options": options, "port": data.port}
        done = data.run(
            [sys.executable, "-m", "_dual_stack_client"],
            json.dumps(job),
            Path(__file__).parent,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        seen = json.loads(done.stdout.splitlines()[-1])
        assert seen["order"] == ["::1", "127.0.0.1"]  # IPv6 first, as dual-stack hosts have it
        assert seen["read"] == "over IPv4"
        assert any(p.rstrip("/").endswith("dual/k") for p in seen["listed"]), seen["listed"]
        # Everything went to the IPv4 front: the auth request, the PUT, the GET, the listing.
        asked = [f"{method} {path}" for method, path, _ in auth.front.seen]
        assert any(line.startswith(DUAL_STACK[backend]) for line in asked), asked
        methods = {method for method, _, _ in data.front.seen}
        assert {"PUT", "GET"} <= methods, data.front.seen
    finally:
        for r in routes:
            r.close()


# -- redirects --------------------------------------------------------------------------------
def test_the_swift_token_never_follows_a_redirect_to_another_origin(
    redirecting_origin: RedirectingOrigin, clean_network_env: NetworkEnv
) -> None:
    token = f"AUTH_tk{uuid.uuid4().hex}"
    store = SwiftStore(
        "c",
        "",
        {"preauthurl": f"{redirecting_origin.url}/v1/AUTH_test", "preauthtoken": token},
    )
    assert store["k"] == b"moved data"  # followed, without the token
    assert redirecting_origin.received
    for headers in redirecting_origin.received:
        assert "x-auth-token" not in headers and "authorization" not in headers
        assert token not in str(headers)


def test_what_an_s3_request_carries_to_another_origin_on_a_redirect(
    redirecting_origin: RedirectingOrigin, clean_network_env: NetworkEnv
) -> None:
    """obstore (reqwest) follows a redirect of a read to another origin itself, and no option
    of obstore or object_store turns that off. reqwest drops ``Authorization`` (the signature,
    which names the access key) on the way; the session token header goes along, which signs
    nothing without the secret key, and that never leaves the client. A write is not
    followed. This pins that behaviour: if a release changes it, docs/network.md must too."""
    store = MinioStore(
        "bucket",
        endpoint_url=redirecting_origin.url,
        key="AKIDREDIRECT",
        secret="secret-not-for-another-origin",
        session_token="session-token-for-another-origin",
        retry=QUICK,
    )
    assert store["k"] == b"moved data"  # followed
    assert len(redirecting_origin.received) == 1
    headers = redirecting_origin.received[0]
    assert "authorization" not in headers
    assert "AKIDREDIRECT" not in str(headers) and "secret-not" not in str(headers)
    assert headers["x-amz-security-token"] == "session-token-for-another-origin"
    with pytest.raises(OSError, match="HTTP 307"):  # a write is not followed at all
        store["k"] = b"data"
    assert len(redirecting_origin.received) == 1


# -- malformed answers, unsendable credentials -------------------------------------------------
MALFORMED = {
    "negative length": b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nabc",
    "length not a number": b"HTTP/1.1 200 OK\r\nContent-Length: 0_5\r\n\r\nabc",
    "negative chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nabc\r\n",
}
QUICK = RetryPolicy(attempts=2, base=0.01, cap=0.02, timeout=5.0)


def at(backend: str, url: str, **credentials: str) -> SwiftStore | MinioStore:
    """A store at ``url`` with fixed credentials (no auth server)."""
    if backend == "swift":
        options = {"preauthurl": f"{url}/v1/AUTH_test", "preauthtoken": "tk", "retry": QUICK}
        if "token" in credentials:
            options["preauthtoken"] = credentials["token"]
        return SwiftStore("c", "", options)
    token = credentials.get("token")
    return MinioStore(
        "bucket", endpoint_url=url, key="k", secret="s", session_token=token, retry=QUICK
    )


@pytest.mark.parametrize("answer", list(MALFORMED))
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_malformed_answer_is_a_clear_error_not_a_stall(
    backend: str, answer: str, clean_network_env: NetworkEnv
) -> None:
    server = MalformedServer(MALFORMED[answer])
    try:
        with pytest.raises(OSError) as failure:
            at(backend, server.url)["k"]
    finally:
        server.close()
    assert not isinstance(failure.value, FileNotFoundError)
    first = str(failure.value).splitlines()[0]
    assert "failed after 2 attempt" in first and "check" in first and len(first) < 250, first


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_credential_with_a_line_break_is_never_sent(
    backend: str, clean_network_env: NetworkEnv
) -> None:
    server = MalformedServer(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    try:
        with pytest.raises(ConfigurationError, match=r"control character.*remove it"):
            at(backend, server.url, token="tk\r\nX-Injected: 1")["k"]
    finally:
        server.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_whole_answer_to_a_ranged_read_is_cut_to_the_range(
    backend: str, tmp_path: Path, clean_network_env: NetworkEnv
) -> None:
    """A server that ignores Range answers 200 with everything: the reader gets the range."""
    data = bytes(range(200))
    for path in ("v1/AUTH_test/c/k", "bucket/k"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(data)
    server = StaticFiles(tmp_path)
    try:
        if backend == "swift":
            options = {"anon": True, "storage_url": f"{server.url}/v1/AUTH_test"}
            store: Any = SwiftStore("c", "", options)
        else:
            store = MinioStore("bucket", endpoint_url=server.url, anon=True)
        requests = {
            RangeByteRequest(10, 20): data[10:20],
            OffsetByteRequest(190): data[190:],
            SuffixByteRequest(5): data[-5:],
        }
        for request, expected in requests.items():
            got = sync(store.get("k", default_buffer_prototype(), request))
            assert got is not None and got.to_bytes() == expected, request
    finally:
        server.close()
