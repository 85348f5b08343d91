"""The two backends behind one interface, so that a reliability test is written once and runs on
Swift and on S3 (the ``backend`` fixture), with a fault proxy in front of each server and an
independent client to look at what is really stored."""

from __future__ import annotations

import atexit
import contextlib
import datetime
import ipaddress
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import swiftclient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from zarrstores._retry import RetryPolicy
from zarrstores._store import ObjectStore
from zarrstores.auth import STSCredentials, TempAuth
from zarrstores.devserver.faultproxy import FaultProxy
from zarrstores.devserver.oidc import OIDCIssuer
from zarrstores.devserver.rgw import RGWServer
from zarrstores.devserver.s3 import S3Server
from zarrstores.devserver.swift import SwiftServer
from zarrstores.minio import MinioFileSystem, MinioStore
from zarrstores.swift import SwiftFileSystem, SwiftStore

__all__ = [
    "BACKENDS",
    "FAST",
    "Backend",
    "backend_fixture",
    "fault_proxy",
    "keystone_options",
    "make_backend",
    "new_bucket",
    "s3_backend_fixture",
    "self_signed",
    "swift_and_s3_fixture",
    "tls_cert_fixture",
    "tls_proxy",
]

FAST = RetryPolicy(attempts=4, base=0.05, cap=0.2, timeout=5.0)
"""Retries that keep failing tests short: four attempts within about a second."""

USER = "test:tester"

_proxies: dict[tuple[str, str], FaultProxy] = {}


def keystone_options(server: SwiftServer, **changes: Any) -> dict[str, Any]:
    """swift:// storage_options for Keystone v3 with a password (``changes`` override)."""
    env = server.os_env("password")
    return {
        "authurl": env["OS_AUTH_URL"],
        "user": env["OS_USERNAME"],
        "key": env["OS_PASSWORD"],
        "auth_version": "3",
        "os_options": {
            "project_name": env["OS_PROJECT_NAME"],
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
        **changes,
    }


def fault_proxy(target: str, *, cert: tuple[Path, Path] | None = None) -> FaultProxy:
    """The session's fault proxy in front of ``target`` (HTTPS with ``cert``): one per target,
    stopped at exit."""
    key = (target, str(cert))
    if key not in _proxies:
        context = None
        if cert is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*cert)
        _proxies[key] = FaultProxy(target, ssl=context).start()
        atexit.register(_proxies[key].stop)
    return _proxies[key]


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files in ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="session", name="tls_cert")
def tls_cert_fixture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate (and key) for 127.0.0.1: the CA bundle is the cert itself."""
    return self_signed(tmp_path_factory.mktemp("tls"))


def tls_proxy(target: str, cert: tuple[Path, Path]) -> str:
    """``https://127.0.0.1:<port>`` in front of ``target``, with the self-signed ``cert``."""
    return fault_proxy(target, cert=cert).url


class Backend:
    """A fresh container (Swift) or bucket (S3), stores on it, and an independent look at it.

    ``store(faulty=True)`` goes through :attr:`proxy` (credentials too), where faults can be
    injected; ``raw_*`` and ``snapshot`` read directly with another client.
    """

    name: str
    kind: str
    """The protocol: ``swift`` or ``s3`` (``name`` also says which server)."""
    container: str
    proxy: FaultProxy
    auth_request: dict[str, str]
    """``method``/``path_contains`` of the requests that fetch credentials (through the proxy)."""

    def store(
        self,
        prefix: str = "",
        *,
        faulty: bool = False,
        read_only: bool = False,
        retry: RetryPolicy = FAST,
        **options: Any,
    ) -> ObjectStore:
        """A store on the container (``options``: more of the store's own, e.g.
        ``max_concurrency``)."""
        raise NotImplementedError

    def fs(self, *, faulty: bool = False) -> Any:
        """An fsspec filesystem with the same credentials (``swift://`` / ``minio://``)."""
        raise NotImplementedError

    def exchanges(self, store: ObjectStore) -> int:
        """How often the store's credentials were fetched (logins, STS exchanges)."""
        raise NotImplementedError

    def raw_get(self, key: str) -> bytes | None:
        raise NotImplementedError

    def raw_keys(self, prefix: str = "") -> list[str]:
        raise NotImplementedError

    def snapshot(self) -> dict[str, bytes]:
        """Every object in the container and its bytes."""
        return {key: self.raw_get(key) or b"" for key in self.raw_keys()}

    def outage(self) -> None:
        """Make the server unreachable (call :meth:`restore` from the test's own thread)."""
        raise NotImplementedError

    def restore(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.proxy.clear()


class SwiftBackend(Backend):
    name = kind = "swift"
    auth_request = {"method": "GET", "path_contains": "/auth/"}

    def __init__(self, server: SwiftServer) -> None:
        self.server = server
        self.container = f"rel-{uuid.uuid4().hex[:12]}"
        self.proxy = fault_proxy(server.proxy_url)
        self._raw = swiftclient.Connection(server.auth_url, USER, server.users[USER], retries=2)
        self._raw.put_container(self.container)

    def auth(self, *, faulty: bool = False) -> TempAuth:
        if not faulty:
            return TempAuth(self.server.auth_url, USER, self.server.users[USER])
        url = self.proxy.url
        return TempAuth(
            f"{url}/auth/v1.0", USER, self.server.users[USER], storage_url=f"{url}/v1/AUTH_test"
        )

    def store(
        self,
        prefix: str = "",
        *,
        faulty: bool = False,
        read_only: bool = False,
        retry: RetryPolicy = FAST,
        **options: Any,
    ) -> SwiftStore:
        options = {"auth": self.auth(faulty=faulty), "retry": retry, **options}
        return SwiftStore(self.container, prefix, options, read_only=read_only)

    def fs(self, *, faulty: bool = False) -> SwiftFileSystem:
        return SwiftFileSystem(auth=self.auth(faulty=faulty), retry=FAST, skip_instance_cache=True)

    def exchanges(self, store: ObjectStore) -> int:
        assert isinstance(store, SwiftStore)
        return store.client.auth.exchanges

    def raw_get(self, key: str) -> bytes | None:
        try:
            return self._raw.get_object(self.container, key)[1]
        except swiftclient.ClientException as e:
            if e.http_status == 404:
                return None
            raise

    def raw_keys(self, prefix: str = "") -> list[str]:
        listing = self._raw.get_container(self.container, prefix=prefix, full_listing=True)[1]
        return [entry["name"] for entry in listing]

    def outage(self) -> None:
        self.server.kill_proxy()

    def restore(self) -> None:
        self.server.restart_proxy()

    def close(self) -> None:
        super().close()
        self.server.clear_faults()
        self._raw.close()


class S3Backend(Backend):
    name = kind = "s3"
    auth_request = {"method": "POST", "path_contains": "/"}

    def __init__(self, server: S3Server | RGWServer, issuer: OIDCIssuer) -> None:
        self.server = server
        self.issuer = issuer
        self.role_arn = server.readwrite_role_arn if isinstance(server, RGWServer) else None
        self.container = f"rel-{uuid.uuid4().hex[:12]}"
        self.proxy = fault_proxy(server.endpoint)
        self._raw = server.admin_client()
        self._raw.create_bucket(Bucket=self.container)

    def endpoint(self, *, faulty: bool = False) -> str:
        return self.proxy.url if faulty else self.server.endpoint

    def store(
        self,
        prefix: str = "",
        *,
        faulty: bool = False,
        read_only: bool = False,
        retry: RetryPolicy = FAST,
        **options: Any,
    ) -> MinioStore:
        endpoint = self.endpoint(faulty=faulty)
        credentials = STSCredentials(endpoint, self.issuer.mint(), role_arn=self.role_arn)
        return MinioStore(
            self.container,
            prefix,
            endpoint_url=endpoint,
            credentials=credentials,
            read_only=read_only,
            retry=retry,
            **options,
        )

    def fs(self, *, faulty: bool = False) -> MinioFileSystem:
        endpoint = self.endpoint(faulty=faulty)
        credentials = STSCredentials(endpoint, self.issuer.mint(), role_arn=self.role_arn)
        return MinioFileSystem(
            endpoint_url=endpoint, credentials=credentials, skip_instance_cache=True
        )

    def exchanges(self, store: ObjectStore) -> int:
        assert isinstance(store, MinioStore)
        return store.credentials.exchanges

    def raw_get(self, key: str) -> bytes | None:
        try:
            return self._raw.get_object(Bucket=self.container, Key=key)["Body"].read()
        except self._raw.exceptions.NoSuchKey:
            return None

    def raw_keys(self, prefix: str = "") -> list[str]:
        pages = self._raw.get_paginator("list_objects_v2").paginate(
            Bucket=self.container, Prefix=prefix
        )
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def outage(self) -> None:
        # The launcher cannot restart SeaweedFS on the same port: the proxy plays the outage,
        # refusing connections and resetting those in flight.
        self.proxy.down()

    def restore(self) -> None:
        self.proxy.up()

    def close(self) -> None:
        super().close()
        self.proxy.up()
        with contextlib.suppress(Exception):
            self._raw.delete_bucket(Bucket=self.container)


class RGWSwiftBackend(SwiftBackend):
    """Swift on Ceph RGW (v1 auth answering 204, storage URL ``/swift/v1``)."""

    name = "rgw-swift"

    def __init__(self, server: RGWServer) -> None:
        self.server = server  # type: ignore[assignment]
        self.container = f"rel-{uuid.uuid4().hex[:12]}"
        self.proxy = fault_proxy(server.endpoint)
        self._raw = swiftclient.Connection(server.auth_url, USER, server.users[USER], retries=2)
        self._raw.put_container(self.container)

    def auth(self, *, faulty: bool = False) -> TempAuth:
        server: RGWServer = self.server  # type: ignore[assignment]
        if not faulty:
            return TempAuth(server.auth_url, USER, server.users[USER])
        url = self.proxy.url
        storage_url = server.storage_url().replace(server.endpoint, url)
        return TempAuth(f"{url}/auth/1.0", USER, server.users[USER], storage_url=storage_url)

    def outage(self) -> None:
        self.proxy.down()  # as for S3: the daemons cannot be restarted on the same port

    def restore(self) -> None:
        self.proxy.up()

    def close(self) -> None:
        self.proxy.clear()
        self.proxy.up()
        self._raw.close()


class RGWS3Backend(S3Backend):
    """S3 on Ceph RGW, STS with a RoleArn."""

    name = "rgw-s3"


BACKENDS = ("swift", "s3", "rgw-swift", "rgw-s3")


@pytest.fixture(scope="module", params=["s3", "rgw"], name="server")
def s3_api_server_fixture(request: pytest.FixtureRequest) -> S3Server | RGWServer:
    """SeaweedFS, then Ceph RGW's S3 API (STS, bucket policies): a module's tests run on both."""
    return request.getfixturevalue("s3_server" if request.param == "s3" else "rgw_server")


def sts_role(server: S3Server | RGWServer, *, read_only: bool = False) -> dict[str, str]:
    """What STS needs besides the token: Ceph RGW a role (SeaweedFS reads the token's)."""
    if not isinstance(server, RGWServer):
        return {}
    return {"role_arn": server.readonly_role_arn if read_only else server.readwrite_role_arn}


@pytest.fixture(name="role")
def role_fixture(server: S3Server | RGWServer) -> dict[str, str]:
    """``sts_role`` of the module's ``server``, read-write."""
    return sts_role(server)


@contextlib.contextmanager
def new_bucket(server: S3Server | RGWServer) -> Iterator[str]:
    """A new empty bucket on ``server`` (made with the admin keys); emptied and removed."""
    name = f"test-{uuid.uuid4().hex[:16]}"
    admin = server.admin_client()
    admin.create_bucket(Bucket=name)
    yield name
    with contextlib.suppress(Exception):
        for page in admin.get_paginator("list_objects_v2").paginate(Bucket=name):
            for item in page.get("Contents", []):
                admin.delete_object(Bucket=name, Key=item["Key"])
        admin.delete_bucket(Bucket=name)


def make_backend(request: pytest.FixtureRequest, name: str, *, s3: str = "s3_server") -> Backend:
    """A backend on the session's servers (``s3``: the S3 server fixture to use)."""
    if name == "swift":
        return SwiftBackend(request.getfixturevalue("swift_server"))
    if name == "rgw-swift":
        return RGWSwiftBackend(request.getfixturevalue("rgw_server"))
    issuer = request.getfixturevalue("oidc_issuer")
    if name == "rgw-s3":
        return RGWS3Backend(request.getfixturevalue("rgw_server"), issuer)
    return S3Backend(request.getfixturevalue(s3), issuer)


def _backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    made = make_backend(request, request.param)
    yield made
    made.close()


@pytest.fixture(name="s3_backend")
def s3_backend_fixture(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """SeaweedFS S3 alone, with a bucket of its own."""
    made = make_backend(request, "s3")
    yield made
    made.close()


backend_fixture = pytest.fixture(name="backend", params=BACKENDS)(_backend)
"""Each backend in turn, with a container/bucket of its own."""

# OpenStack Swift and SeaweedFS S3 only, for suites about our code above the protocol (files,
# frames, request counts): RGW's protocol differences are proved by the suites that take
# ``backend_fixture``, and running these twice more would double the suite's time.
swift_and_s3_fixture = pytest.fixture(name="backend", params=BACKENDS[:2])(_backend)
