"""Keystone federated with an OIDC issuer, as Apache's mod_auth_openidc makes it in production:
Keystone 30 validates no outside JWT, so :class:`OIDCFront` does, in Keystone's process, and the
``openid`` auth method maps the claims to an ephemeral user in a group with a role on a project."""

from __future__ import annotations

import contextlib
import json
import re
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import jwt
import webob

from .keystone import OIDC_DOMAIN, OIDC_GROUP, OIDC_IDP, OIDC_PROJECT, OIDC_PROTOCOL

PREFIX = "OIDC-"
_FEDERATED_AUTH = re.compile(r"^/v3/OS-FEDERATION/identity_providers/[^/]+/protocols/[^/]+/auth$")


class OIDCFront:
    """WSGI middleware: checks the bearer token on the federated auth URL against the issuer's
    JWKS (signature, ``iss``, ``aud``, ``exp``), passes its claims on as ``OIDC-<claim>`` (lists
    joined with ``;``) and ``REMOTE_USER`` (``sub``), or answers 401 itself."""

    def __init__(self, app: Callable[..., Iterable[bytes]], issuer: str, audience: str) -> None:
        self.app = app
        self.issuer = issuer
        self.audience = audience
        self._jwks: jwt.PyJWKClient | None = None

    def _keys(self) -> jwt.PyJWKClient:
        if self._jwks is None:
            url = f"{self.issuer}/.well-known/openid-configuration"
            with urllib.request.urlopen(url, timeout=10) as resp:
                self._jwks = jwt.PyJWKClient(json.load(resp)["jwks_uri"])
        return self._jwks

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        for key in [k for k in environ if k.upper().startswith((PREFIX.upper(), "HTTP_OIDC"))]:
            del environ[key]  # never trust claims a client sent
        if not _FEDERATED_AUTH.match(environ.get("PATH_INFO", "")):
            return self.app(environ, start_response)
        scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _unauthorized("no bearer token")(environ, start_response)
        try:
            key = self._keys().get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except (jwt.PyJWTError, OSError) as e:
            return _unauthorized(type(e).__name__)(environ, start_response)
        for name, value in claims.items():
            values = value if isinstance(value, list) else [value]
            environ[PREFIX + name] = ";".join(str(v) for v in values)
        environ["REMOTE_USER"] = str(claims["sub"])
        return self.app(environ, start_response)


def _unauthorized(reason: str) -> webob.Response:
    error = {"code": 401, "title": "Unauthorized", "message": reason}
    answer = webob.Response(status=401, json_body={"error": error})
    answer.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return answer


def provision(issuer: str, project_ids: dict[str, str], member_role: str) -> None:
    """Domain, group (member of the ``test`` project), identity provider trusting ``issuer``,
    mapping (``sub`` -> ephemeral user in the group) and the ``openid`` protocol. Idempotent:
    a kept directory started again gets the issuer's new URL."""
    from keystone import exception
    from keystone.common.provider_api import ProviderAPIs as api

    try:
        domain_id = api.resource_api.get_domain_by_name(OIDC_DOMAIN)["id"]
    except exception.DomainNotFound:
        domain_id = uuid.uuid4().hex
        api.resource_api.create_domain(
            domain_id, {"id": domain_id, "name": OIDC_DOMAIN, "enabled": True, "description": ""}
        )
    try:
        group_id = api.identity_api.get_group_by_name(OIDC_GROUP, domain_id)["id"]
    except exception.GroupNotFound:
        group = {"name": OIDC_GROUP, "domain_id": domain_id, "description": ""}
        group_id = api.identity_api.create_group(group)["id"]
    with contextlib.suppress(exception.Conflict):
        api.assignment_api.create_grant(
            member_role, group_id=group_id, project_id=project_ids[OIDC_PROJECT]
        )
    rules = [
        {
            "local": [
                {"user": {"name": "{0}", "id": "{0}", "domain": {"id": domain_id}}},
                {"group": {"id": group_id}},
            ],
            "remote": [{"type": f"{PREFIX}sub"}, {"type": f"{PREFIX}iss", "any_one_of": [issuer]}],
        }
    ]
    mapping_id = f"{OIDC_IDP}-mapping"
    try:
        api.federation_api.create_mapping(mapping_id, {"id": mapping_id, "rules": rules})
    except exception.Conflict:
        api.federation_api.update_mapping(mapping_id, {"id": mapping_id, "rules": rules})
    idp = {"id": OIDC_IDP, "enabled": True, "remote_ids": [issuer], "domain_id": domain_id}
    try:
        api.federation_api.create_idp(OIDC_IDP, idp)
    except exception.Conflict:
        api.federation_api.update_idp(OIDC_IDP, {"remote_ids": [issuer]})
    with contextlib.suppress(exception.Conflict):
        api.federation_api.create_protocol(OIDC_IDP, OIDC_PROTOCOL, {"mapping_id": mapping_id})
