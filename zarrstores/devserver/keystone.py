"""A local Keystone (identity v3) with test users, projects and an ``object-store`` catalog entry,
in a process of its own (:mod:`._keystone_main`): importing Keystone pulls in eventlet and
oslo.config (which reads ``sys.argv``). The caller writes the config and waits for a state file."""

from __future__ import annotations

import base64
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.twofactor.totp import TOTP

from ._proc import LocalServer, ServerStartError, free_port, http_status, write_ini

ADMIN_PASSWORD = "admin-secret"  # a local test server: fixed, known credentials
SERVICE_USER, SERVICE_PASSWORD = "swift", "swift-secret"
SERVICE_PROJECT = "service"
REGION = "RegionOne"
APPLICATION_CREDENTIAL_NAME = "zarrstores-tester"
# Federation (``oidc_issuer=``): identity provider, protocol, and where mapped users land (a group,
# member of project "test"). The domain is not "federated": Keystone reserves that name.
OIDC_IDP, OIDC_PROTOCOL = "local-oidc", "openid"
OIDC_DOMAIN, OIDC_GROUP, OIDC_PROJECT = "oidc-users", "oidc-members", "test"

# user -> (password, project, role). "reader" is not an operator role of Swift's keystoneauth,
# so tester3 needs ACLs, like tempauth's non-admin test:tester3.
USERS: dict[str, tuple[str, str, str]] = {
    "tester": ("testing", "test", "member"),
    "tester2": ("testing2", "test2", "member"),
    "tester3": ("testing3", "test", "reader"),
}


# TOTP is enabled for v3totp / v3multifactor logins (tester has a TOTP credential).
_AUTH_METHODS = "password,token,application_credential,totp"


class KeystoneServer(LocalServer):
    """Keystone on 127.0.0.1 with users ``tester``/``tester2``/``tester3`` (see :data:`USERS`).

    ``object_store_url`` is the catalog's ``object-store`` endpoint, e.g.
    ``http://127.0.0.1:8080/v1/AUTH_$(project_id)s``. Every start (re)creates an application
    credential of tester in project ``test``; tester has a TOTP credential (:attr:`totp_secret`).
    ``oidc_issuer`` (a URL) federates Keystone with it (``OIDC_IDP``, ``OIDC_PROTOCOL``): a token
    with ``aud`` ``oidc_audience`` maps its ``sub`` to a member of project ``test``.
    """

    _START_TIMEOUT = 90.0

    def __init__(
        self,
        dir: str | Path | None = None,
        *,
        object_store_url: str | None = None,
        token_life: int = 86400,
        oidc_issuer: str | None = None,
        oidc_audience: str = "zarrstores",
    ) -> None:
        super().__init__(dir, "keystone")
        self.object_store_url = object_store_url
        self.token_life = token_life
        self.oidc_issuer = oidc_issuer
        self.oidc_audience = oidc_audience
        self.port = 0
        self.url = ""
        self.project_ids: dict[str, str] = {}
        self.application_credential_id = ""
        self.application_credential_secret = ""
        self.totp_secret = ""
        self._log = self.dir / "keystone.log"
        self._state = self.dir / "state.json"

    def _start(self) -> None:
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the process without waiting (so a caller can start other servers meanwhile)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self._state.unlink(missing_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v3"
        config = str(self._write_config())
        cmd = [sys.executable, "-m", "zarrstores.devserver._keystone_main", config]
        self._spawn("keystone", cmd, log=self._log)

    def wait_ready(self) -> None:
        """Wait for :meth:`launch`'s process to answer, provisioned; raises ServerStartError."""
        self._wait(
            lambda: self._state.exists() and http_status(self.url) == 200, "keystone", self._log
        )
        state = json.loads(self._state.read_text())
        self.project_ids = state["project_ids"]
        self.application_credential_id = state["application_credential"]["id"]
        self.application_credential_secret = state["application_credential"]["secret"]
        self.totp_secret = state["totp_secret"]

    def totp_passcode(self) -> str:
        """tester's current TOTP passcode (6 digits, 30 s, HMAC-SHA1, as Keystone checks it)."""
        key = base64.b32decode(self.totp_secret + "=" * (-len(self.totp_secret) % 8))
        return TOTP(key, 6, hashes.SHA1(), 30).generate(time.time()).decode()

    def os_env(self, kind: str = "password", *, user: str = "tester") -> dict[str, str]:
        """``OS_*`` variables for the ``swift`` CLI and keystoneauth1's loaders.

        ``kind`` is ``"password"`` (``user`` in its project), ``"application_credential"``
        (tester's) or ``"oidc"`` (``v3oidcaccesstoken``, without the token: it comes from token
        discovery, e.g. ``BEARER_TOKEN_FILE``). ValueError for another kind, or ``"oidc"``
        without ``oidc_issuer``.
        """
        env = {"OS_AUTH_URL": self.url, "OS_IDENTITY_API_VERSION": "3", "OS_REGION_NAME": REGION}
        if kind == "password":
            password, project, _ = USERS[user]
            env.update(
                OS_AUTH_TYPE="password",
                OS_USERNAME=user,
                OS_PASSWORD=password,
                OS_PROJECT_NAME=project,
                OS_USER_DOMAIN_NAME="Default",
                OS_PROJECT_DOMAIN_NAME="Default",
            )
        elif kind == "application_credential":
            env.update(
                OS_AUTH_TYPE="v3applicationcredential",
                OS_APPLICATION_CREDENTIAL_ID=self.application_credential_id,
                OS_APPLICATION_CREDENTIAL_SECRET=self.application_credential_secret,
            )
        elif kind == "oidc":
            if not self.oidc_issuer:
                raise ValueError("this Keystone was started without oidc_issuer")
            env.update(
                OS_AUTH_TYPE="v3oidcaccesstoken",
                OS_IDENTITY_PROVIDER=OIDC_IDP,
                OS_PROTOCOL=OIDC_PROTOCOL,
                OS_PROJECT_NAME=OIDC_PROJECT,
                OS_PROJECT_DOMAIN_NAME="Default",
            )
        else:
            raise ValueError(
                f"unknown kind {kind!r}: 'password', 'application_credential' or 'oidc'"
            )
        return env

    def add_object_store(self, url: str, region: str) -> str:
        """Add a public ``object-store`` endpoint ``url`` in ``region`` (made if missing) to the
        catalog, through Keystone's API as admin; its id. Clients with ``OS_REGION_NAME=region``
        reach it; ``$(project_id)s`` in ``url`` becomes the token's project."""
        from keystoneauth1 import exceptions

        admin = self._admin_client()
        with contextlib.suppress(exceptions.Conflict):  # the region exists
            admin.regions.create(id=region)
        services = admin.services.list(type="object-store")
        if not services:
            raise ServerStartError("keystone has no object-store service: pass object_store_url")
        return str(admin.endpoints.create(services[0], url, "public", region).id)

    def remove_endpoint(self, endpoint_id: str) -> None:
        """Remove a catalog endpoint (one :meth:`add_object_store` added)."""
        self._admin_client().endpoints.delete(endpoint_id)

    def _admin_client(self) -> Any:
        from keystoneauth1 import session
        from keystoneauth1.identity import v3
        from keystoneclient.v3 import client

        auth = v3.Password(
            auth_url=self.url,
            username="admin",
            password=ADMIN_PASSWORD,
            project_name="admin",
            user_domain_id="default",
            project_domain_id="default",
        )
        return client.Client(session=session.Session(auth=auth))

    def _write_config(self) -> Path:
        sections: dict[str, dict[str, Any]] = {
            "DEFAULT": {"debug": "false", "use_stderr": "true"},
            "database": {"connection": f"sqlite:///{self.dir / 'keystone.db'}"},
            # The minimum: hashing dominates set-up time, and these are test passwords.
            "identity": {"password_hash_rounds": 4},
            "token": {"provider": "fernet", "expiration": self.token_life},
            "auth": {"methods": _AUTH_METHODS + (",openid" if self.oidc_issuer else "")},
            # For _keystone_main, not Keystone.
            "zarrstores": {
                "port": self.port,
                "state": self._state,
                "object_store_url": self.object_store_url or "",
                "oidc_issuer": self.oidc_issuer or "",
                "oidc_audience": self.oidc_audience,
            },
        }
        for name in ("fernet_tokens", "fernet_receipts", "credential"):
            repo = self.dir / f"keys-{name}"
            repo.mkdir(mode=0o700, exist_ok=True)
            # Kept across restarts of a given directory: they decrypt stored credentials.
            for key in (repo / "0", repo / "1"):
                if not key.exists():
                    key.write_bytes(Fernet.generate_key())
                    key.chmod(0o600)
            sections[name] = {"key_repository": repo}
        if self.oidc_issuer:
            # Claims are environ keys with this prefix, set by the front, never client headers.
            sections["federation"] = {"assertion_prefix": "OIDC-"}
            sections["openid"] = {"remote_id_attribute": "OIDC-iss"}
        config = self.dir / "keystone.conf"
        write_ini(config, sections)
        return config
