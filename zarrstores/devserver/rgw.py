"""A real Ceph RADOS Gateway on 127.0.0.1: one mon, one memstore OSD (data in RAM) and radosgw,
without cephx, systemd or mgr (``scripts/install-ceph.sh`` installs the Debian packages). It
serves Swift (v1 auth at ``/auth/1.0``, users ``account:user``), S3, IAM for an admin, and STS
``AssumeRoleWithWebIdentity`` into roles ``readwrite``/``readonly`` for an OIDCIssuer's tokens."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import uuid
from pathlib import Path
from typing import Any

from ._proc import (
    TEST_USERS,
    LocalServer,
    S3Admin,
    ServerStartError,
    SwiftV1Users,
    allow_document,
    check_socket_path,
    free_ports,
    http_status,
)
from .oidc import OIDCIssuer

__all__ = ["RGWServer"]

_DAEMONS = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "monmaptool", "ceph")


class RGWServer(S3Admin, SwiftV1Users, LocalServer):
    """Ceph RGW with Swift, S3, IAM and STS trusting ``issuer``.

    ``account_in_url`` is ``rgw_swift_account_in_url``: storage URLs ``/swift/v1`` (False, as
    CESNET and de.NBI hand them out) or ``/swift/v1/AUTH_<account>``. ``keystone_url`` (a
    :class:`~.keystone.KeystoneServer`'s) makes the Swift API take Keystone tokens too, at
    ``/swift/v1/AUTH_<project id>``. ``extra_conf`` goes into the gateway's ``ceph.conf`` section.
    """

    # Clients sign with S3Admin.region: RGW takes any region in the signature scope.
    _admin_retries = {"max_attempts": 2}
    zonegroup: str = "default"
    """RGW's own zonegroup name: a bucket's LocationConstraint must be this (or absent)."""

    def __init__(
        self,
        issuer: OIDCIssuer | None = None,
        dir: str | Path | None = None,
        *,
        account_in_url: bool = False,
        keystone_url: str | None = None,
        memstore_bytes: int = 1 << 30,
        extra_conf: dict[str, str] | None = None,
    ) -> None:
        self.issuer = issuer
        self.account_in_url = account_in_url or keystone_url is not None
        self.memstore_bytes = memstore_bytes
        keystone = _keystone_conf(keystone_url) if keystone_url else {}
        self.extra_conf = {**keystone, **(extra_conf or {})}
        super().__init__(dir, "rgw")
        self.users = dict(TEST_USERS)  # Swift v1 users (``account:user`` -> key), as tempauth's
        self.admin_access_key = "ZARRSTORESADMIN"
        self.admin_secret_key = secrets.token_hex(20)
        self.readwrite_role_arn = "arn:aws:iam:::role/readwrite"
        self.readonly_role_arn = "arn:aws:iam:::role/readonly"
        self.endpoint = ""
        self.auth_url = ""
        self.log = self.dir / "log"
        self._env: dict[str, str] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    def _start(self) -> None:
        """Start mon, OSD and radosgw, create users, provider and roles."""
        if missing := [name for name in _DAEMONS if shutil.which(name) is None]:
            raise ServerStartError(
                f"Ceph RGW needs {', '.join(missing)}: run scripts/install-ceph.sh as root "
                "(Debian: apt-get install --no-install-recommends radosgw ceph-mon ceph-osd "
                "ceph-common)"
            )
        for sub in ("run", "log", "mon.a", "osd.0", "rgw"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        check_socket_path(self.dir, "run/client.rgw.asok", "RGWServer")
        mon_port, rgw_port = free_ports(2)
        self.endpoint = f"http://127.0.0.1:{rgw_port}"
        self.auth_url = f"{self.endpoint}/auth/1.0"
        conf = self.dir / "ceph.conf"
        fsid = str(uuid.uuid4())
        conf.write_text(self._conf(fsid, mon_port, rgw_port))
        self._env = {**os.environ, "CEPH_CONF": str(conf)}

        monmap = str(self.dir / "monmap")
        self._run("monmaptool", "--create", "--clobber", "--fsid", fsid,
                  "--addv", "a", f"[v2:127.0.0.1:{mon_port}]", monmap)  # fmt: skip
        self._run("ceph-mon", "--mkfs", "-i", "a", "--monmap", monmap)
        self._start_daemon("mon", ["ceph-mon", "-f", "-i", "a"])
        self._wait(
            lambda: bool(self._run("ceph", "mon", "stat", timeout=5.0)), "ceph-mon", self.log
        )

        osd_uuid = str(uuid.uuid4())
        osd_id = self._run("ceph", "osd", "new", osd_uuid).strip()
        self._run("ceph-osd", "-i", osd_id, "--mkfs", "--osd-uuid", osd_uuid)
        self._start_daemon("osd", ["ceph-osd", "-f", "-i", osd_id])
        self._wait(lambda: self._osd_up(osd_id), "ceph-osd", self.log)

        # stop() ends radosgw first, then the OSD, then the mon: radosgw hangs in shutdown
        # when the OSD is gone first.
        self._start_daemon("rgw", ["radosgw", "-f", "-n", "client.rgw"])
        self._wait(lambda: http_status(self.endpoint + "/") == 200, "radosgw", self.log)
        self._create_users()
        if self.issuer is not None:
            self._create_sts_roles(self.issuer)

    def __repr__(self) -> str:
        return f"RGWServer(endpoint={self.endpoint!r}, account_in_url={self.account_in_url})"

    # -- what clients need -------------------------------------------------------------------

    def storage_url(self, account: str = "test") -> str:
        """The Swift storage URL of ``account`` as the gateway hands it out."""
        base = f"{self.endpoint}/swift/v1"
        return f"{base}/AUTH_{account}" if self.account_in_url else base

    @property
    def catalog_url(self) -> str:
        """The Swift endpoint for a Keystone catalog: ``$(project_id)s`` is the account."""
        return f"{self.endpoint}/swift/v1/AUTH_$(project_id)s"

    def sts_env(self, token_file: str | Path) -> dict[str, str]:
        """``AWS_*`` variables for STS with the OIDC token in ``token_file`` (read-write role)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ROLE_ARN": self.readwrite_role_arn,
            "BEARER_TOKEN_FILE": str(token_file),
        }

    def revoke_sessions(self, role: str = "readwrite") -> None:
        """End every STS session of ``role`` now, as an expiry would: the role is made anew
        (same name and ARN, new id), and RGW refuses sessions of the old one (AccessDenied)."""
        iam = self.admin_client("iam")
        trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
        policy = iam.get_role_policy(RoleName=role, PolicyName=role)["PolicyDocument"]
        iam.delete_role_policy(RoleName=role, PolicyName=role)
        iam.delete_role(RoleName=role)
        self._create_role(iam, role, trust, policy)

    def admin(self, *args: str) -> Any:
        """Run ``radosgw-admin`` with ``args``; its JSON answer (None when it prints none)."""
        out = self._run("radosgw-admin", *args)
        return json.loads(out) if out.strip() else None

    # -- set-up ------------------------------------------------------------------------------

    def _conf(self, fsid: str, mon_port: int, rgw_port: int) -> str:
        d = self.dir
        extra = "\n".join(f"{k} = {v}" for k, v in self.extra_conf.items())
        return f"""[global]
fsid = {fsid}
mon_host = v2:127.0.0.1:{mon_port}
public_addr = 127.0.0.1
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
run_dir = {d}/run
admin_socket = {d}/run/$name.asok
log_file = {d}/log/$name.log
mon_cluster_log_file = {d}/log/cluster.log
osd_pool_default_size = 1
mon_allow_pool_size_one = true
osd_pool_default_pg_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_max_pg_per_osd = 1000
osd_crush_chooseleaf_type = 0
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
mon_data_avail_warn = 1
[mon]
mon_data = {d}/mon.$id
mon_initial_members = a
# the default (1 s) makes every pool creation wait: radosgw would start in 9 s, not 0.7 s
paxos_propose_interval = 0.05
paxos_min_wait = 0.01
[osd]
osd_data = {d}/osd.$id
osd_objectstore = memstore
memstore_device_bytes = {self.memstore_bytes}
[client.rgw]
# secure mode (the default) is impossible without cephx: radosgw would loop on auth -13
ms_mon_client_mode = crc
rgw_frontends = beast endpoint=127.0.0.1:{rgw_port}
rgw_thread_pool_size = 32
rgw_data = {d}/rgw
rgw_swift_account_in_url = {str(self.account_in_url).lower()}
rgw_swift_versioning_enabled = true
rgw_sts_key = {secrets.token_hex(8)}
rgw_s3_auth_use_sts = true
rgw_verify_ssl = false
debug_rgw = 1
{extra}
"""

    def _create_users(self) -> None:
        for account in ("test", "test2"):
            self.admin("user", "create", f"--uid={account}", f"--display-name={account}")
        for user, key in self.users.items():
            account = user.partition(":")[0]
            rights = "read" if user == "test:tester3" else "full"
            self.admin("subuser", "create", f"--uid={account}", f"--subuser={user}",
                       f"--access={rights}", "--key-type=swift", f"--secret-key={key}")  # fmt: skip
        self.admin("user", "create", "--uid=zarrstores-admin", "--display-name=admin", "--admin",
                   f"--access-key={self.admin_access_key}",
                   f"--secret-key={self.admin_secret_key}")  # fmt: skip
        self.admin("caps", "add", "--uid=zarrstores-admin",
                   "--caps=roles=*;oidc-provider=*;users=*;buckets=*")  # fmt: skip

    def _create_sts_roles(self, issuer: OIDCIssuer) -> None:
        iam = self.admin_client("iam")
        provider = iam.create_open_id_connect_provider(
            Url=issuer.url,
            ClientIDList=sorted({issuer.audience, issuer.client_id}),
            ThumbprintList=[issuer.thumbprint],
        )["OpenIDConnectProviderArn"]
        idp = issuer.url.split("://", 1)[1]  # RGW names conditions by host:port
        trust = allow_document(
            Principal={"Federated": [provider]},
            Action=["sts:AssumeRoleWithWebIdentity"],
            Condition={"StringEquals": {f"{idp}:app_id": issuer.audience}},
        )
        read = ["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation", "s3:ListAllMyBuckets"]
        for role, actions in (("readwrite", ["s3:*"]), ("readonly", read)):
            policy = allow_document(Action=actions, Resource=["arn:aws:s3:::*"])
            self._create_role(iam, role, trust, policy)

    @staticmethod
    def _create_role(iam: Any, role: str, trust: dict[str, Any], policy: dict[str, Any]) -> None:
        """A role with its trust document and one inline policy named like it."""
        # RGW Pacific's form parser does not turn '+' back into spaces: no spaces in policies.
        trust_text, policy_text = (json.dumps(d, separators=(",", ":")) for d in (trust, policy))
        iam.create_role(RoleName=role, Path="/", AssumeRolePolicyDocument=trust_text)
        iam.put_role_policy(RoleName=role, PolicyName=role, PolicyDocument=policy_text)

    # -- processes ---------------------------------------------------------------------------

    def _start_daemon(self, name: str, cmd: list[str]) -> None:
        # SIGKILL when this process dies: the data is throw-away, and radosgw hangs 10 s or more
        # in a SIGTERM shutdown when the OSD goes too. `ps` shows the config path: the cluster.
        self._spawn(
            name,
            [*cmd, "--conf", self._env["CEPH_CONF"]],
            log=self.log / f"{name}.out",
            env=self._env,
            death_signal=signal.SIGKILL,
        )

    def _run(self, *cmd: str, timeout: float = 30.0) -> str:
        try:
            done = subprocess.run(
                cmd, env=self._env, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise ServerStartError(f"`{cmd[0]} {cmd[1]}` took over {timeout:.0f} s") from None
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
            raise ServerStartError(
                f"`{' '.join(cmd[:3])}` failed ({done.returncode}): {last}; logs in {self.log}"
            )
        return done.stdout

    def _osd_up(self, osd_id: str) -> bool:
        dump = self._run("ceph", "osd", "dump", "--format=json", timeout=5.0)
        return any(o["osd"] == int(osd_id) and o["up"] for o in json.loads(dump)["osds"])


def _keystone_conf(url: str) -> dict[str, str]:
    """RGW settings to validate Swift tokens at Keystone, with an account per project."""
    from .keystone import SERVICE_PASSWORD, SERVICE_PROJECT, SERVICE_USER

    return {
        "rgw_keystone_url": url.rstrip("/").removesuffix("/v3"),  # RGW adds /v3 itself
        "rgw_keystone_api_version": "3",
        "rgw_keystone_admin_user": SERVICE_USER,
        "rgw_keystone_admin_password": SERVICE_PASSWORD,
        "rgw_keystone_admin_project": SERVICE_PROJECT,
        "rgw_keystone_admin_domain": "Default",
        "rgw_keystone_accepted_roles": "member,admin",
        "rgw_keystone_implicit_tenants": "true",
        "rgw_keystone_verify_ssl": "false",
    }
