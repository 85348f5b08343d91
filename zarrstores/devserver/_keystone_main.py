"""Run Keystone for :class:`~zarrstores.devserver.keystone.KeystoneServer` (``python -m``):
sync the database, provision, write the state file, serve with threaded wsgiref until SIGTERM.
Provisioning uses Keystone's internal managers, as ``keystone-manage bootstrap`` does: over
HTTP every call pays ~75 ms of token validation, which made start-up 2 s slower."""

from __future__ import annotations

import base64
import configparser
import json
import os
import secrets
import sys
import uuid
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIServer, make_server

from zarrstores.devserver.keystone import (
    ADMIN_PASSWORD,
    APPLICATION_CREDENTIAL_NAME,
    REGION,
    SERVICE_PASSWORD,
    SERVICE_PROJECT,
    SERVICE_USER,
    USERS,
)


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def main() -> None:
    config = configparser.RawConfigParser()
    config.read(sys.argv[1])
    args = config["zarrstores"]  # the launcher's settings, beside Keystone's own
    # Keystone's oslo.config parser reads sys.argv; keep our arguments away from it.
    os.environ["OS_KEYSTONE_CONFIG_FILES"] = sys.argv[1]
    sys.argv = [sys.argv[0]]

    from keystone.cmd import bootstrap
    from keystone.common.sql import upgrades
    from keystone.server import wsgi

    app = wsgi.initialize_public_application()
    upgrades.offline_sync_database_to_version()

    port = int(args["port"])
    url = f"http://127.0.0.1:{port}/v3"
    bootstrap.backends.load_backends = lambda: None  # the app above loaded them already
    boot = bootstrap.Bootstrapper()
    boot.admin_username, boot.admin_password = "admin", ADMIN_PASSWORD
    boot.project_name, boot.admin_role_name = "admin", "admin"
    boot.service_name, boot.public_url, boot.region_id = "keystone", url, REGION
    boot.bootstrap()
    roles = {r: getattr(boot, f"{r}_role_id") for r in ("admin", "member", "reader", "service")}
    state = _provision(boot, roles, args["object_store_url"])
    if issuer := args["oidc_issuer"]:
        from zarrstores.devserver import _keystone_oidc

        _keystone_oidc.provision(issuer, state["project_ids"], roles["member"])
        app = _keystone_oidc.OIDCFront(app, issuer, args["oidc_audience"])

    server = make_server("127.0.0.1", port, app, server_class=_ThreadingWSGIServer)
    tmp = Path(args["state"] + ".tmp")
    tmp.write_text(json.dumps(state, indent=1))
    tmp.replace(args["state"])  # the launcher waits for this file and for /v3 to answer
    print(f"keystone ready at {url}", flush=True)
    server.serve_forever()


def _provision(boot: Any, roles: dict[str, str], object_store_url: str) -> dict[str, Any]:
    """Find or create users, projects and grants (by the bootstrapper's own steps, as for the
    admin) and the catalog entry; replace the app credential. Idempotent, for a kept directory."""
    from keystone.common import driver_hints, provider_api

    api = provider_api.ProviderAPIs
    grants = [(SERVICE_USER, SERVICE_PASSWORD, SERVICE_PROJECT, r) for r in ("service", "admin")]
    grants += [(user, password, project, role) for user, (password, project, role) in USERS.items()]
    project_ids: dict[str, str] = {}
    user_ids: dict[str, str] = {}
    for user, password, project, role in grants:
        boot.admin_username, boot.admin_password, boot.project_name = user, password, project
        boot.admin_role_id = roles[role]
        boot._bootstrap_project()
        boot._bootstrap_admin_user()
        boot._bootstrap_project_role_assignment()  # granted at an earlier start: a no-op
        project_ids[project], user_ids[user] = boot.project_id, boot.admin_user_id

    if object_store_url:  # the object-store service anew: a kept dir has a new port
        hints = driver_hints.Hints()
        hints.add_filter("type", "object-store")
        for old in api.catalog_api.list_services(hints):
            api.catalog_api.delete_service(old["id"])  # with its endpoints
        service = {"id": uuid.uuid4().hex, "type": "object-store", "name": "swift", "enabled": True}
        api.catalog_api.create_service(service["id"], service)
        endpoint = {"id": uuid.uuid4().hex, "service_id": service["id"], "interface": "public"}
        endpoint.update(region_id=REGION, url=object_store_url, enabled=True)
        api.catalog_api.create_endpoint(endpoint["id"], endpoint)

    # The secret is shown only once: replace one left from an earlier start (restricted, no expiry).
    _, project, role = USERS["tester"]
    tester, test = user_ids["tester"], project_ids[project]
    hints = driver_hints.Hints()
    hints.add_filter("name", APPLICATION_CREDENTIAL_NAME)
    for old in api.application_credential_api.list_application_credentials(tester, hints):
        api.application_credential_api.delete_application_credential(old["id"])
    secret = base64.urlsafe_b64encode(secrets.token_bytes(64)).rstrip(b"=").decode()
    created = api.application_credential_api.create_application_credential(
        {
            "id": uuid.uuid4().hex,
            "name": APPLICATION_CREDENTIAL_NAME,
            "secret": secret,
            "user_id": tester,
            "project_id": test,
            "roles": [{"id": roles[role]}],
        }
    )
    return {
        "project_ids": project_ids,
        "application_credential": {"id": created["id"], "secret": secret},
        "totp_secret": _totp_credential(api, tester),
    }


def _totp_credential(api: Any, user_id: str) -> str:
    """tester's TOTP secret (base32): the one stored, or a new one."""
    for credential in api.credential_api.list_credentials_for_user(user_id, type="totp"):
        return credential["blob"]
    blob = base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")
    credential_id = uuid.uuid4().hex
    api.credential_api.create_credential(
        credential_id,
        {"id": credential_id, "user_id": user_id, "type": "totp", "blob": blob, "project_id": None},
    )
    return blob


if __name__ == "__main__":
    main()
