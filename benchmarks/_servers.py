"""The test bed's real local servers for one benchmark run: Swift, and S3 with STS (SeaweedFS),
and Ceph RGW serving both APIs (``on_rgw()``: the same rounds against it)."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from zarrstores.auth import S3Credentials, assume_role_with_web_identity
from zarrstores.devserver.oidc import OIDCIssuer
from zarrstores.devserver.rgw import RGWServer
from zarrstores.devserver.s3 import S3Server
from zarrstores.devserver.swift import SwiftServer

from ._proxy import DelayProxy

SWIFT_USER = "test:tester"


class BenchServers:
    """Starts what a run needs on first use (``swift``, ``s3``, ``delay_proxy``) and stops
    everything at the end. Start it from the main thread: the servers die with that thread."""

    def __init__(self, keep: bool = False) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="zarrstores-bench-"))
        self.keep = keep
        self._swift: SwiftServer | None = None
        self._issuer: OIDCIssuer | None = None
        self._s3: dict[str, S3Server] = {}
        self._proxy: DelayProxy | None = None
        self._swift_token = ""
        self._rgw: RGWServer | None = None
        self._rgw_token = ""
        self.rgw_active = False
        """Inside ``on_rgw()``: Swift and S3 mean Ceph RGW's APIs."""
        self.cache: dict[Any, Any] = {}
        """What sections share within a run (seeded containers)."""

    def __enter__(self) -> BenchServers:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop every server; remove the data unless ``keep``."""
        if self._proxy:
            self._proxy.stop()
        for s3 in self._s3.values():
            s3.stop()
        if self._rgw:
            self._rgw.stop()
        if self._swift:
            self._swift.stop()
        if self._issuer:
            self._issuer.stop()
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- Ceph RGW -----------------------------------------------------------------------------
    @property
    def rgw(self) -> RGWServer:
        """Ceph RGW (storage URLs ``/swift/v1/AUTH_test``, the form swiftspec can address),
        STS trusting the run's issuer."""
        if self._rgw is None:
            self._rgw = RGWServer(self.issuer, self.dir / "rgw", account_in_url=True).start()
            self._rgw_token = self._rgw.get_token(SWIFT_USER)[1]
        return self._rgw

    @contextlib.contextmanager
    def on_rgw(self) -> Iterator[RGWServer]:
        """Within this block, ``swift_*`` and ``s3*`` name Ceph RGW's Swift and S3 APIs."""
        server = self.rgw
        self.rgw_active = True
        try:
            yield server
        finally:
            self.rgw_active = False

    @property
    def server_name(self) -> str:
        """What the Swift and S3 rounds run against now, for the tables' headings."""
        return "Ceph RGW" if self.rgw_active else ""

    def sts_options(self) -> dict[str, Any]:
        """What STS on the current S3 server needs besides the token (RGW: a role)."""
        return {"role_arn": self.rgw.readwrite_role_arn} if self.rgw_active else {}

    # -- Swift --------------------------------------------------------------------------------
    @property
    def swift(self) -> SwiftServer:
        """Swift with tempauth (no Keystone: every contender uses a pre-authenticated token)."""
        if self._swift is None:
            self._swift = SwiftServer(self.dir / "swift").start()
            self._swift_token = self._swift.get_token(SWIFT_USER)[1]
        return self._swift

    @property
    def swift_token(self) -> str:
        """A tempauth token of ``test:tester``, valid for the run."""
        if self.rgw_active:
            _ = self.rgw
            return self._rgw_token
        _ = self.swift
        return self._swift_token

    def swift_url(self, *, delayed: bool = False) -> str:
        """The storage URL of ``AUTH_test``, directly or through the delay proxy."""
        if self.rgw_active:
            if delayed:
                raise ValueError("no delay proxy in front of Ceph RGW")
            return self.rgw.storage_url("test")
        if delayed:
            return f"http://127.0.0.1:{self.delay_proxy.port}/v1/AUTH_test"
        return self.swift.storage_url("test")

    def swift_pids(self, *, delayed: bool = False) -> list[int]:
        """The Swift server processes (and the delay proxy's, for delayed runs)."""
        if self.rgw_active:
            return self.rgw.pids
        return self.swift.pids + (self.delay_proxy.pids if delayed else [])

    @property
    def delay_proxy(self) -> DelayProxy:
        """10 ms each way (20 ms round trip) in front of the Swift proxy."""
        if self._proxy is None:
            target = self.swift.proxy_url.removeprefix("http://")
            self._proxy = DelayProxy(target, 0.010, self.dir / "delay-proxy.log").start()
        return self._proxy

    def swift_options(self, *, delayed: bool = False) -> dict[str, str]:
        """swiftclient-style pre-authenticated options (ours and zarr-swiftstore take them)."""
        return {"preauthurl": self.swift_url(delayed=delayed), "preauthtoken": self.swift_token}

    # -- S3 with STS --------------------------------------------------------------------------
    @property
    def issuer(self) -> OIDCIssuer:
        if self._issuer is None:
            self._issuer = OIDCIssuer()
        return self._issuer

    def s3_server(self, max_session: str = "12h") -> S3Server:
        """SeaweedFS whose STS sessions last at most ``max_session`` (one server per value)."""
        if max_session not in self._s3:
            path = self.dir / f"s3-{len(self._s3)}"
            self._s3[max_session] = S3Server(self.issuer, path, max_session=max_session).start()
        return self._s3[max_session]

    @property
    def s3(self) -> S3Server | RGWServer:
        """SeaweedFS, or Ceph RGW within ``on_rgw()``."""
        return self.rgw if self.rgw_active else self.s3_server()

    def s3_pids(self) -> list[int]:
        return self.s3.pids

    def s3_vacuum(self) -> None:
        """Give SeaweedFS back the space of overwritten objects now (between repetitions,
        untimed): it keeps them until a vacuum every 14 min, and as many volumes as the free
        disk holds; repeated 1 GiB writes ran out of volumes (500 InternalError)."""
        server = self.s3
        if isinstance(server, RGWServer):
            return
        url = f"http://127.0.0.1:{server.ports['master']}/vol/vacuum?garbageThreshold=0.01"
        with urllib.request.urlopen(url, timeout=600) as answer:
            answer.read()

    def oidc_token(self, hours: float = 6) -> str:
        """A read-write OIDC token (JWT) the S3 server's STS accepts."""
        return self.issuer.mint(policy="readwrite", expires_in=hours * 3600)

    def sts_credentials(self, server: S3Server | RGWServer | None = None) -> S3Credentials:
        """One STS exchange: the temporary keys the static-key contenders are given."""
        server = server or self.s3
        if isinstance(server, RGWServer):  # sessions of at most the role's 1 h there
            return assume_role_with_web_identity(
                server.endpoint,
                self.oidc_token(),
                role_arn=server.readwrite_role_arn,
                duration=3600,
            )
        return assume_role_with_web_identity(server.endpoint, self.oidc_token(), duration=43200)

    def new_bucket(self, server: S3Server | RGWServer | None = None) -> str:
        name = f"bench-{uuid.uuid4().hex[:12]}"
        (server or self.s3).admin_client().create_bucket(Bucket=name)
        return name
