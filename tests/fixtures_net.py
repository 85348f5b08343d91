"""Fixtures for the network tests: a real forward proxy (proxy.py), private CAs with a server
certificate, TLS fronts for the local servers, and an origin that redirects elsewhere."""

from __future__ import annotations

import datetime
import functools
import ipaddress
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from zarrstores.devserver._proc import free_port
from zarrstores.devserver.faultproxy import FaultProxy

__all__ = [
    "DUAL_HOST",
    "STORAGE_HOST",
    "BrokenIPv6Route",
    "MalformedServer",
    "NetworkEnv",
    "PrivateCA",
    "clean_network_env",
    "forward_proxy",
    "other_ca",
    "private_ca",
    "redirecting_origin",
]

STORAGE_HOST = "storage.zarrstores.test"
"""A host name only the forward proxy resolves (to 127.0.0.1): see ``_proxy_plugin``."""

DUAL_HOST = "dual.zarrstores.test"
"""A host name with an IPv6 address (::1) first and an IPv4 one (127.0.0.1) second, known
only inside ``BrokenIPv6Route.run``'s processes."""

NETWORK_ENV_VARS = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "REQUESTS_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "AWS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)


class ForwardProxy:
    """proxy.py on 127.0.0.1 with the ``StorageNames`` plugin; ``requests()`` reads its access
    log: one line per request it forwarded (``METHOD host:port/path - status``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = directory / "proxy.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> ForwardProxy:
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
        for name in NETWORK_ENV_VARS:
            env.pop(name, None)
            env.pop(name.lower(), None)
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "proxy",
                "--hostname=127.0.0.1",
                f"--port={self.port}",
                "--plugins=_proxy_plugin.StorageNames",
                "--num-acceptors=1",
                "--num-workers=2",
                "--log-level=INFO",
                f"--log-file={self.log}",
            ],
            env=env,
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            if self._process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"proxy.py did not start; see {self.log}")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def requests(self) -> list[str]:
        """``METHOD host:port/path`` of every request forwarded so far (CONNECT for TLS)."""
        text = self.log.read_text() if self.log.exists() else ""
        return re.findall(r"access_log:\d+ - \S+ - (\S+ \S+)", text)

    def requests_since(self, before: int, expected: int, wait: float = 10.0) -> list[str]:
        """The requests logged after the first ``before``, once there are ``expected`` of them
        (or ``wait`` seconds have passed): proxy.py writes a line when the client connection
        closes, which can be just after the client has its response."""
        deadline = time.monotonic() + wait
        while len(seen := self.requests()[before:]) < expected and time.monotonic() < deadline:
            time.sleep(0.05)
        return seen


@pytest.fixture(scope="session")
def forward_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForwardProxy]:
    """A real forward proxy for the session."""
    proxy = ForwardProxy(tmp_path_factory.mktemp("forward-proxy")).start()
    yield proxy
    proxy.stop()


@dataclass
class NetworkEnv:
    """Sets the proxy and CA environment variables of one test (all others cleared)."""

    monkeypatch: pytest.MonkeyPatch

    def set(self, **values: str) -> None:
        for name, value in values.items():
            self.monkeypatch.setenv(name, value)


@pytest.fixture
def clean_network_env(monkeypatch: pytest.MonkeyPatch) -> NetworkEnv:
    """No proxy or CA variable from the surroundings, in either case."""
    for name in NETWORK_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return NetworkEnv(monkeypatch)


@dataclass
class PrivateCA:
    """A CA certificate (``ca``, also alone in ``directory``) and a server certificate it
    signed for 127.0.0.1, localhost and ``STORAGE_HOST`` (``cert``, ``key``)."""

    ca: Path
    directory: Path
    cert: Path
    key: Path


def _make_ca(directory: Path, name: str) -> PrivateCA:
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"zarrstores test CA {name}")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.DNSName("localhost"),
        x509.DNSName(STORAGE_HOST),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, STORAGE_HOST)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_dir = directory / "ca-dir"
    ca_dir.mkdir(exist_ok=True)
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    (directory / "ca.pem").write_bytes(ca_pem)
    (ca_dir / "site-ca.pem").write_bytes(ca_pem)
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return PrivateCA(directory / "ca.pem", ca_dir, directory / "cert.pem", directory / "key.pem")


@pytest.fixture(scope="session")
def private_ca(tmp_path_factory: pytest.TempPathFactory) -> PrivateCA:
    """The site CA the TLS fronts' certificate comes from."""
    return _make_ca(tmp_path_factory.mktemp("ca"), "site")


@pytest.fixture(scope="session")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> PrivateCA:
    """A CA that signed nothing the servers use (the wrong CA)."""
    return _make_ca(tmp_path_factory.mktemp("other-ca"), "other")


class RedirectingOrigin:
    """Two plain HTTP servers: ``url`` answers every request with a 307 to the same path at
    ``target_url`` (another origin), which records the headers it gets and answers 200."""

    def __init__(self) -> None:
        self.received: list[dict[str, str]] = []
        received = self.received

        class Target(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                received.append({k.lower(): v for k, v in self.headers.items()})
                body = b"moved data"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_HEAD = do_GET

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._target = ThreadingHTTPServer(("127.0.0.1", 0), Target)
        self.target_url = f"http://127.0.0.1:{self._target.server_address[1]}"
        target_url = self.target_url

        class Redirect(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(307)
                self.send_header("Location", target_url + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_HEAD = do_PUT = do_GET

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._origin = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
        self.url = f"http://127.0.0.1:{self._origin.server_address[1]}"
        for server in (self._target, self._origin):
            threading.Thread(target=server.serve_forever, daemon=True).start()

    def close(self) -> None:
        for server in (self._target, self._origin):
            server.shutdown()
            server.server_close()


@pytest.fixture
def redirecting_origin() -> Iterator[RedirectingOrigin]:
    """An origin that redirects every request to another one (which records headers)."""
    origin = RedirectingOrigin()
    yield origin
    origin.close()


class MalformedServer:
    """A TCP server on 127.0.0.1 that answers every request with ``answer`` (bytes that are
    not valid HTTP) and then closes; ``url`` is its origin."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._socket.accept()
            except OSError:
                return
            with conn:
                try:
                    conn.recv(65536)
                    conn.sendall(self.answer)
                    time.sleep(0.1)
                except OSError:
                    pass

    def close(self) -> None:
        self._socket.close()


class StaticFiles:
    """A plain HTTP file server on 127.0.0.1 (stdlib's): it ignores ``Range`` and answers every
    ranged GET with the whole file and 200, as some caches in front of storage do."""

    def __init__(self, directory: Path) -> None:
        handler = functools.partial(_QuietFiles, directory=str(directory))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class BrokenIPv6Route:
    """A server reachable as ``url`` (``DUAL_HOST``) over IPv4 only: a counting ``front``
    (FaultProxy) on 127.0.0.1:PORT, and on [::1]:PORT a listener whose accept queue is full,
    so the kernel drops every SYN sent there and a connection attempt over IPv6 hangs, as on
    a broken route (it is not refused).

    ``run(command)`` runs a command in a mount namespace of its own (``unshare``, root)
    whose /etc/hosts gives ``DUAL_HOST`` both addresses: every resolver of every library in
    it (glibc's getaddrinfo, from Python and from Rust) answers ::1 first."""

    def __init__(self, target: str, directory: Path) -> None:
        self.front = FaultProxy(target).start()
        self.port = self.front.port
        self.url = f"http://{DUAL_HOST}:{self.port}"
        self._listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        self._listener.bind(("::1", self.port))
        self._listener.listen(0)  # room for one connection, which the next line takes
        self._filler = socket.create_connection(("::1", self.port))
        self.hosts = directory / "hosts"
        self.hosts.write_text(f"127.0.0.1 localhost\n::1 {DUAL_HOST}\n127.0.0.1 {DUAL_HOST}\n")

    def ipv6_hangs(self) -> bool:
        """Whether a connection to [::1]:PORT times out (rather than being refused)."""
        try:
            socket.create_connection(("::1", self.port), timeout=1.0).close()
        except TimeoutError:
            return True
        except OSError:
            return False
        return False

    def run(self, command: list[str], stdin: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        """``command`` with ``DUAL_HOST`` resolvable (``stdin`` its input), its output kept."""
        bind = 'mount --bind "$0" /etc/hosts && exec "$@"'
        return subprocess.run(
            ["unshare", "--mount", "--", "sh", "-c", bind, str(self.hosts), *command],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=cwd,
            timeout=300,
            check=False,
        )

    def close(self) -> None:
        self._filler.close()
        self._listener.close()
        self.front.stop()
