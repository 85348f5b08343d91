"""Auth objects from ``storage_options`` or the environment: the one place that reads them.

Backends call ``swift_auth(**options)`` / ``s3_credentials(endpoint, **options)`` and from then
on only ask the returned object for credentials.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from .errors import ConfigurationError, TokenNotFoundError
from .s3 import AnonymousS3, S3CredentialProvider, StaticS3Credentials, check_endpoint
from .swift import AnonymousSwift, KeystoneAuth, PreAuth, SwiftAuth, TempAuth
from .tokens import TokenSource, find_token

# swiftclient os_options (and OS_* names) -> keystoneauth1 v3 plugin options
_OS_OPTIONS = {
    "user_id": "user_id",
    "username": "username",
    "user_domain_id": "user_domain_id",
    "user_domain_name": "user_domain_name",
    "project_id": "project_id",
    "tenant_id": "project_id",
    "project_name": "project_name",
    "tenant_name": "project_name",
    "project_domain_id": "project_domain_id",
    "project_domain_name": "project_domain_name",
    "application_credential_id": "application_credential_id",
    "application_credential_name": "application_credential_name",
    "application_credential_secret": "application_credential_secret",
    "auth_token": "token",
}
_INTERFACES = {"publicURL": "public", "internalURL": "internal", "adminURL": "admin"}


def swift_auth(
    auth: SwiftAuth | None = None,
    *,
    anon: bool = False,
    storage_url: str | None = None,
    preauthurl: str | None = None,
    preauthtoken: str | None = None,
    authurl: str | None = None,
    user: str | None = None,
    key: str | None = None,
    auth_version: str | int | None = None,
    os_options: Mapping[str, Any] | None = None,
    verify: bool | str = True,
    insecure: bool = False,
    cacert: str | None = None,
    env: Mapping[str, str] | None = None,
) -> SwiftAuth:
    """The Swift auth that options (names as in swiftclient / zarr-swiftstore) describe,
    else the one the environment describes (``swift_auth_from_env``)."""
    verify = False if insecure else (cacert or verify)
    if auth is not None:
        return auth
    if anon:
        url = (
            storage_url or preauthurl or (os.environ if env is None else env).get("OS_STORAGE_URL")
        )
        if not url:
            raise ConfigurationError(
                "anon=True needs the account's storage URL: pass storage_url='https://host/v1/"
                "AUTH_<project>' (the public URL of the container without the container name)"
            )
        return AnonymousSwift(url, verify=verify)
    if preauthurl or preauthtoken:
        if not (preauthurl and preauthtoken):
            raise ConfigurationError(
                "pre-authenticated access needs both preauthurl and preauthtoken"
            )
        return PreAuth(preauthurl, preauthtoken, verify=verify)
    if authurl:
        options = dict(os_options or {})
        app_credential = options.get("auth_type") == "v3applicationcredential"
        if app_credential:
            return _keystone(authurl, options, storage_url, verify)
        if not user or not key:
            raise ConfigurationError(
                f"authurl {authurl!r} given without user= and key= (for a Keystone application "
                "credential pass os_options={'auth_type': 'v3applicationcredential', "
                "'application_credential_id': ..., 'application_credential_secret': ...})"
            )
        version = str(auth_version or ("3" if _looks_keystone(authurl, options) else "1"))
        if version.startswith("3") or version.startswith("2"):
            return _keystone(
                authurl, {"username": user, "password": key, **options}, storage_url, verify
            )
        return TempAuth(authurl, user, key, storage_url=storage_url, verify=verify)
    return swift_auth_from_env(env, verify=verify)


def _looks_keystone(authurl: str, options: Mapping[str, Any]) -> bool:
    return bool(re.search(r"/v3/?$", authurl)) or any(k in options for k in _OS_OPTIONS)


def _keystone(
    auth_url: str, options: Mapping[str, Any], storage_url: str | None, verify: bool | str
) -> KeystoneAuth:
    opts = {_OS_OPTIONS[k]: v for k, v in options.items() if k in _OS_OPTIONS and v}
    auth_type = options.get("auth_type") or "password"
    if auth_type == "v3applicationcredential":
        opts.pop("password", None)
        opts = {k: v for k, v in opts.items() if not k.startswith("project")}
    else:
        opts["password"] = options.get("password")
    interface = options.get("interface") or options.get("endpoint_type") or "public"
    return KeystoneAuth(
        auth_url,
        auth_type=auth_type,
        region_name=options.get("region_name"),
        interface=_INTERFACES.get(interface, interface),
        storage_url=storage_url or options.get("object_storage_url"),
        verify=verify,
        **opts,
    )


def swift_auth_from_env(
    env: Mapping[str, str] | None = None, *, verify: bool | str = True
) -> SwiftAuth:
    """Swift auth from the variables the ``swift`` CLI reads, in its order:
    ``OS_STORAGE_URL`` + ``OS_AUTH_TOKEN``; ``ST_AUTH``/``ST_USER``/``ST_KEY``; ``OS_AUTH_URL``
    with ``OS_*`` (password, application credential or token)."""
    env = os.environ if env is None else env
    if env.get("OS_CACERT"):
        verify = env["OS_CACERT"]
    if env.get("OS_INSECURE", "").lower() in ("1", "true", "yes"):
        verify = False
    if env.get("OS_STORAGE_URL") and env.get("OS_AUTH_TOKEN"):
        return PreAuth(
            env["OS_STORAGE_URL"], env["OS_AUTH_TOKEN"], verify=verify, from_env=env is os.environ
        )
    if env.get("ST_AUTH"):
        missing = [v for v in ("ST_USER", "ST_KEY") if not env.get(v)]
        if missing:
            raise ConfigurationError(f"ST_AUTH is set but {' and '.join(missing)} not")
        version = env.get("ST_AUTH_VERSION", "1")
        if version.startswith("3"):
            return _keystone(
                env["ST_AUTH"],
                {"username": env["ST_USER"], "password": env["ST_KEY"]},
                None,
                verify,
            )
        return TempAuth(env["ST_AUTH"], env["ST_USER"], env["ST_KEY"], verify=verify)
    if env.get("OS_AUTH_URL"):
        options: dict[str, Any] = {
            name: env[f"OS_{name.upper()}"] for name in _OS_OPTIONS if env.get(f"OS_{name.upper()}")
        }
        options["password"] = env.get("OS_PASSWORD")
        auth_type = env.get("OS_AUTH_TYPE", "password")
        if auth_type in ("v3token", "token") or (
            env.get("OS_AUTH_TOKEN")
            and not env.get("OS_PASSWORD")
            and auth_type != "v3applicationcredential"
        ):
            auth_type = "token"
            options.pop("password", None)
        elif auth_type != "v3applicationcredential" and not env.get("OS_PASSWORD"):
            raise ConfigurationError(
                "OS_AUTH_URL is set but OS_PASSWORD is not (for an application credential set "
                "OS_AUTH_TYPE=v3applicationcredential and OS_APPLICATION_CREDENTIAL_ID/SECRET)"
            )
        options["auth_type"] = auth_type
        options["region_name"] = env.get("OS_REGION_NAME")
        options["interface"] = env.get("OS_INTERFACE") or env.get("OS_ENDPOINT_TYPE")
        return _keystone(env["OS_AUTH_URL"], options, env.get("OS_STORAGE_URL"), verify)
    raise ConfigurationError(
        "no Swift credentials found. Set ST_AUTH/ST_USER/ST_KEY (v1 auth), or OS_AUTH_URL with "
        "OS_USERNAME/OS_PASSWORD/OS_PROJECT_NAME (Keystone v3) or OS_AUTH_TYPE="
        "v3applicationcredential, or OS_STORAGE_URL and OS_AUTH_TOKEN; or pass storage_options "
        "(authurl/user/key, preauthurl/preauthtoken, or anon=True with storage_url)"
    )


def getenv_auth(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """zarr-swiftstore's ``getenv_auth``: Swift v1 / pre-auth options from the environment."""
    env = os.environ if env is None else env
    names = {
        "preauthurl": "OS_STORAGE_URL",
        "preauthtoken": "OS_AUTH_TOKEN",
        "authurl": "ST_AUTH",
        "user": "ST_USER",
        "key": "ST_KEY",
    }
    auth = {k: env[v] for k, v in names.items() if env.get(v)}
    if not auth:
        raise ConfigurationError(
            "No environment variables found: set ST_AUTH/ST_USER/ST_KEY or "
            "OS_STORAGE_URL/OS_AUTH_TOKEN"
        )
    return auth


def acquire_token(
    authurl: str, user: str, key: str | None = None, update_env: bool = True
) -> dict[str, str]:
    """zarr-swiftstore's ``acquire_token``: v1 auth once; prints the time left, returns
    ``{"preauthurl", "preauthtoken"}`` and (``update_env``) sets OS_STORAGE_URL/OS_AUTH_TOKEN."""
    if key is None:
        import getpass

        key = getpass.getpass("Key: ")
    creds = TempAuth(authurl, user, key).get()
    if creds.expires_at is not None:
        import time

        left = timedelta(seconds=int(creds.expires_at - time.time()))
        print(f"Token expires in: {left}")
    token = creds.token.reveal() if creds.token else ""
    if update_env:
        os.environ["OS_STORAGE_URL"] = creds.storage_url
        os.environ["OS_AUTH_TOKEN"] = token
    return {"preauthurl": creds.storage_url, "preauthtoken": token}


_MC_HOST = re.compile(r"^(?P<scheme>https?)://(?P<creds>[^@]*)@(?P<host>.+)$")


def mc_alias(
    alias: str, *, env: Mapping[str, str] | None = None, config: str | Path | None = None
) -> tuple[StaticS3Credentials, str]:
    """Credentials and endpoint of an ``mc`` alias: ``MC_HOST_<alias>`` first, then the
    ``mc`` config file (``$MC_CONFIG_DIR/config.json`` or ``~/.mc/config.json``)."""
    env = os.environ if env is None else env
    url = env.get(f"MC_HOST_{alias}")
    if url:
        m = _MC_HOST.match(url)
        parts = [unquote(p) for p in m.group("creds").split(":")] if m else []
        if not m or len(parts) not in (2, 3):
            raise ConfigurationError(
                f"MC_HOST_{alias} is not of the form "
                "http(s)://ACCESS_KEY:SECRET_KEY[:SESSION_TOKEN]@host[:port]"
            )
        return StaticS3Credentials(*parts), f"{m.group('scheme')}://{m.group('host')}".rstrip("/")
    path = Path(config) if config else Path(env.get("MC_CONFIG_DIR", "~/.mc")) / "config.json"
    path = path.expanduser()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigurationError(
            f"mc alias {alias!r}: no MC_HOST_{alias} variable and no mc config at {path}; "
            f"create it with `mc alias set {alias} URL ACCESS_KEY SECRET_KEY`"
        ) from None
    except (OSError, ValueError) as e:
        raise ConfigurationError(f"mc config {path} cannot be read: {type(e).__name__}") from None
    entry = (data.get("aliases") or data.get("hosts") or {}).get(alias)
    if not entry:
        known = ", ".join(sorted(data.get("aliases") or data.get("hosts") or {})) or "none"
        raise ConfigurationError(f"mc alias {alias!r} not in {path} (aliases there: {known})")
    creds = StaticS3Credentials(
        entry.get("accessKey", ""), entry.get("secretKey", ""), entry.get("sessionToken") or None
    )
    return creds, entry["url"].rstrip("/")


def endpoint_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """``AWS_ENDPOINT_URL_S3`` or else ``AWS_ENDPOINT_URL``, as the AWS CLI reads them."""
    env = os.environ if env is None else env
    return env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None


def s3_credentials(
    endpoint_url: str | None = None,
    *,
    credentials: S3CredentialProvider | None = None,
    anon: bool = False,
    key: str | None = None,
    secret: str | None = None,
    session_token: str | None = None,
    mc_alias_name: str | None = None,
    token: str | TokenSource | Callable[[], str] | None = None,
    token_file: str | os.PathLike[str] | None = None,
    role_arn: str | None = None,
    duration: int = 3600,
    session_policy: str | None = None,
    verify: bool | str = True,
    env: Mapping[str, str] | None = None,
) -> tuple[S3CredentialProvider, str]:
    """The credential provider and endpoint that options (else the environment) describe.

    Precedence: ``credentials`` > ``anon`` > ``key``/``secret`` > ``mc_alias_name`` >
    an OIDC token (``token``/``token_file``, else discovery) exchanged via STS >
    ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` when no token is found.
    """
    from .sts import STSCredentials

    env = os.environ if env is None else env
    if mc_alias_name:
        provider, alias_endpoint = mc_alias(mc_alias_name, env=env)
        endpoint_url = endpoint_url or alias_endpoint
    endpoint_url = endpoint_url or (credentials.endpoint_url if credentials else None)
    endpoint_url = endpoint_url or endpoint_from_env(env)
    if not endpoint_url:
        raise ConfigurationError(
            "no S3 endpoint: pass endpoint_url='https://...' or set AWS_ENDPOINT_URL_S3 / "
            "AWS_ENDPOINT_URL, or name an mc alias (mc_alias=...)"
        )
    endpoint_url = check_endpoint(endpoint_url)
    if credentials is not None:
        return credentials, endpoint_url
    if anon:
        return AnonymousS3(), endpoint_url
    if key or secret:
        if not (key and secret):
            raise ConfigurationError("static S3 keys need both key= and secret=")
        return StaticS3Credentials(key, secret, session_token), endpoint_url
    if mc_alias_name:
        return provider, endpoint_url
    sts_options = {
        "role_arn": role_arn or env.get("AWS_ROLE_ARN") or None,
        "duration": duration,
        "session_policy": session_policy,
        "verify": verify,
    }
    if token is not None or token_file is not None:
        return STSCredentials(
            endpoint_url, token, token_file=token_file, **sts_options
        ), endpoint_url
    try:
        source = find_token(env)
    except TokenNotFoundError as e:
        if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
            static = StaticS3Credentials(
                env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env.get("AWS_SESSION_TOKEN")
            )
            return static, endpoint_url
        raise TokenNotFoundError(
            f"{e}\nFor static keys pass key=/secret= or set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY; for public data pass anon=True."
        ) from None
    return STSCredentials(endpoint_url, source, **sts_options), endpoint_url
