"""Auth objects from ``storage_options`` or the environment: the one place that reads them."""

from __future__ import annotations

import collections
import contextlib
import getpass
import json
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from .awsconfig import AwsProfile, load_profile, profile_name
from .clouds import load_cloud
from .errors import ConfigurationError, TokenNotFoundError
from .keystone import OIDC_ACCESS_TOKEN, KeystoneAuth, keystone_options_from_env
from .s3 import AnonymousS3, S3CredentialProvider, StaticS3Credentials, check_endpoint
from .sts import STSCredentials
from .swift import AnonymousSwift, PreAuth, SwiftAuth, TempAuth
from .tokens import TokenSource, find_token, sharing_key, token_source

# swiftclient's own os_options names (not keystoneauth1 options) -> what they mean here.
_SWIFTCLIENT_NAMES = {
    "tenant_id": "project_id",
    "tenant_name": "project_name",
    "auth_token": "token",
    "endpoint_type": "interface",
    "object_storage_url": "storage_url",
}


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
    auth_type: str | None = None,
    auth_url: str | None = None,
    cloud: str | None = None,
    region_name: str | None = None,
    interface: str | None = None,
    verify: bool | str = True,
    insecure: bool = False,
    cacert: str | None = None,
    env: Mapping[str, str] | None = None,
    **keystone_options: Any,
) -> SwiftAuth:
    """The Swift auth that options describe, else the environment's (``swift_auth_from_env``).

    Options are swiftclient's / zarr-swiftstore's (``authurl``, ``user``, ``key``,
    ``os_options``, ``preauthurl``...), or keystoneauth1's: ``auth_type`` with the plugin's own
    option names (``auth_url``, ``project_name``, ``identity_provider``...), or ``cloud`` (a
    ``clouds.yaml`` entry, those options overriding it). ``KeystoneAuth`` says where a
    ``v3oidcaccesstoken`` login takes its token from.
    """
    verify = False if insecure else (cacert or verify)
    env = os.environ if env is None else env
    if auth is not None:
        return auth
    if anon:
        url = storage_url or preauthurl or env.get("OS_STORAGE_URL")
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
    place = {"region_name": region_name, "interface": interface, "storage_url": storage_url}
    if cloud:
        return _keystone_from_cloud(cloud, env, verify, {**keystone_options, **place})
    if auth_type or auth_url or keystone_options:
        options = {"auth_url": auth_url or authurl, **keystone_options, **place}
        return _keystone(options, auth_type or "password", verify, env)
    if authurl:
        return _swiftclient_style(authurl, user, key, auth_version, os_options, place, verify)
    return swift_auth_from_env(env, verify=verify)


def _swiftclient_style(
    authurl: str,
    user: str | None,
    key: str | None,
    auth_version: str | int | None,
    os_options: Mapping[str, Any] | None,
    place: dict[str, Any],
    verify: bool | str,
) -> SwiftAuth:
    """swiftclient's ``authurl``/``user``/``key``/``os_options``: v1 auth, or Keystone."""
    options = {_SWIFTCLIENT_NAMES.get(k, k): v for k, v in (os_options or {}).items() if v}
    options |= {k: v for k, v in place.items() if v}  # the arguments win over os_options
    options.pop("service_type", None)  # always object-store
    auth_type = options.pop("auth_type", None)
    if auth_type and auth_type not in ("password", "v3password"):
        return _keystone({"auth_url": authurl, **options}, auth_type, verify)
    if not user or not key:
        raise ConfigurationError(
            f"authurl {authurl!r} given without user= and key= (for a Keystone application "
            "credential pass os_options={'auth_type': 'v3applicationcredential', "
            "'application_credential_id': ..., 'application_credential_secret': ...})"
        )
    keystone = re.search(r"/v3/?$", authurl) or options.keys() - place.keys()
    version = str(auth_version or ("3" if keystone else "1"))
    if version.startswith(("2", "3")):
        options = {"auth_url": authurl, "username": user, "password": key, **options}
        # As most sites' openrc files: names are looked up in the default domain unless a
        # domain is given (keystoneauth1 requires one; a wrong one fails the login, clearly).
        for kind in ("user", "project"):
            if not any(f"{kind}_domain_{k}" in options for k in ("id", "name")):
                options[f"{kind}_domain_name"] = "Default"
        return _keystone(options, auth_type or "v3password", verify)
    return TempAuth(authurl, user, key, storage_url=options.get("storage_url"), verify=verify)


def _keystone(
    options: Mapping[str, Any],
    auth_type: str,
    verify: bool | str,
    env: Mapping[str, str] | None = None,
) -> KeystoneAuth:
    if auth_type == OIDC_ACCESS_TOKEN and not (
        options.get("access_token") or options.get("access_token_file")
    ):
        try:
            options = {**options, "access_token": find_token(env)}
        except TokenNotFoundError as e:
            raise TokenNotFoundError(
                f"Keystone auth type {OIDC_ACCESS_TOKEN!r} needs an OIDC access token: set "
                f"BEARER_TOKEN_FILE or OS_ACCESS_TOKEN, or pass access_token_file=...\n{e}"
            ) from None
    if auth_type == "v3applicationcredential":
        # The credential's project is fixed: a scope beside it (a project from an earlier
        # openrc in the environment) makes Keystone refuse the login.
        options = {k: v for k, v in options.items() if not k.startswith(("project", "domain"))}
    return KeystoneAuth(auth_type=auth_type, verify=verify, **options)


def _keystone_from_cloud(
    name: str, env: Mapping[str, str], verify: bool | str, given: Mapping[str, Any]
) -> KeystoneAuth:
    config = load_cloud(name, env)  # the cloud's region and interface, unless given
    options = {**config.auth, "region_name": config.region_name, "interface": config.interface}
    if config.verify is not True and verify is True:
        verify = config.verify
    return _keystone(options | {k: v for k, v in given.items() if v}, config.auth_type, verify, env)


def swift_auth_from_env(
    env: Mapping[str, str] | None = None, *, verify: bool | str = True
) -> SwiftAuth:
    """Swift auth from the variables the ``swift`` and ``openstack`` CLIs read, in this order:
    ``OS_STORAGE_URL`` + ``OS_AUTH_TOKEN``; ``ST_AUTH``/``ST_USER``/``ST_KEY``; ``OS_CLOUD``
    (a ``clouds.yaml`` entry); ``OS_AUTH_URL`` with ``OS_AUTH_TYPE`` (default ``password``)
    and that auth type's ``OS_*`` options."""
    env = os.environ if env is None else env
    verify = _verify_from_env(env, verify)
    if env.get("OS_STORAGE_URL") and env.get("OS_AUTH_TOKEN"):
        return PreAuth(
            env["OS_STORAGE_URL"], env["OS_AUTH_TOKEN"], verify=verify, from_env=env is os.environ
        )
    if env.get("ST_AUTH"):
        if missing := [v for v in ("ST_USER", "ST_KEY") if not env.get(v)]:
            raise ConfigurationError(f"ST_AUTH is set but {' and '.join(missing)} not")
        version = env.get("ST_AUTH_VERSION", "1")
        return _swiftclient_style(
            env["ST_AUTH"], env["ST_USER"], env["ST_KEY"], version, None, {}, verify
        )
    if (auth := _keystone_from_env(env, verify, {})) is not None:
        return auth
    raise ConfigurationError(
        "no Swift credentials found. Set ST_AUTH/ST_USER/ST_KEY (v1 auth), or OS_AUTH_URL with "
        "OS_AUTH_TYPE and its OS_* options (default password: OS_USERNAME/OS_PASSWORD/"
        "OS_PROJECT_NAME), or OS_CLOUD naming a clouds.yaml entry, or OS_STORAGE_URL and "
        "OS_AUTH_TOKEN; or pass storage_options (authurl/user/key, auth_type and its options, "
        "cloud, preauthurl/preauthtoken, or anon=True with storage_url)"
    )


def _verify_from_env(env: Mapping[str, str], verify: bool | str = True) -> bool | str:
    if env.get("OS_INSECURE", "").lower() in ("1", "true", "yes"):
        return False
    return env.get("OS_CACERT") or verify


def _keystone_from_env(
    env: Mapping[str, str], verify: bool | str, overrides: dict[str, Any]
) -> KeystoneAuth | None:
    """The Keystone login of ``OS_CLOUD``, else of ``OS_AUTH_URL``; None without either."""
    place = {
        "region_name": env.get("OS_REGION_NAME"),
        "interface": env.get("OS_INTERFACE") or env.get("OS_ENDPOINT_TYPE"),
        "storage_url": env.get("OS_STORAGE_URL"),
    }
    if env.get("OS_CLOUD"):
        return _keystone_from_cloud(env["OS_CLOUD"], env, verify, overrides | place)
    if not env.get("OS_AUTH_URL"):
        return None
    token = env.get("OS_TOKEN") or env.get("OS_AUTH_TOKEN")
    default = "token" if token and not env.get("OS_PASSWORD") else "password"
    auth_type = env.get("OS_AUTH_TYPE") or env.get("OS_AUTH_PLUGIN") or default
    options = keystone_options_from_env(env, auth_type) | overrides | place
    return _keystone(options, auth_type, verify, env)


def keystone_for_token(
    source: TokenSource, env: Mapping[str, str] | None = None
) -> KeystoneAuth | None:
    """The ``v3oidcaccesstoken`` login that ``OS_CLOUD`` or ``OS_AUTH_URL`` + ``OS_AUTH_TYPE``
    configure, with the token from ``source``; None when they configure none."""
    env = os.environ if env is None else env
    cloud = env.get("OS_CLOUD")
    auth_type = load_cloud(cloud, env).auth_type if cloud else env.get("OS_AUTH_TYPE")
    if auth_type != OIDC_ACCESS_TOKEN:
        return None
    return _keystone_from_env(env, _verify_from_env(env), {"access_token": source})


def getenv_auth(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """zarr-swiftstore's ``getenv_auth``: Swift v1 / pre-auth options from the environment."""
    env = os.environ if env is None else env
    names = {"preauthurl": "OS_STORAGE_URL", "preauthtoken": "OS_AUTH_TOKEN"}
    names |= {"authurl": "ST_AUTH", "user": "ST_USER", "key": "ST_KEY"}
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
    creds = TempAuth(authurl, user, getpass.getpass("Key: ") if key is None else key).get()
    if creds.expires_at is not None:
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
    if url := env.get(f"MC_HOST_{alias}"):
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
    aliases = data.get("aliases") or data.get("hosts") or {}
    if not (entry := aliases.get(alias)):
        known = ", ".join(sorted(aliases)) or "none"
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
    profile: str | None = None,
    token: str | TokenSource | Callable[[], str] | None = None,
    token_file: str | os.PathLike[str] | None = None,
    role_arn: str | None = None,
    duration: int = 3600,
    session_policy: str | None = None,
    verify: bool | str = True,
    proxy: str | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[S3CredentialProvider, str]:
    """The credential provider and endpoint that options (else the environment) describe.

    Precedence: ``credentials`` > ``anon`` > ``key``/``secret`` > ``mc_alias_name`` > the AWS
    ``profile`` > an OIDC token (``token``/``token_file``, else discovery) exchanged via STS >
    ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` > the profile ``AWS_PROFILE`` names, or
    the ``default`` one, when no token is found. The endpoint: ``endpoint_url``, the mc alias',
    ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``, then the profile's (as the aws CLI).
    ``proxy``: the HTTP(S) proxy of the STS exchanges (a ``credentials`` provider is copied
    with it, never changed).
    """
    env = os.environ if env is None else env
    provider, alias_endpoint = mc_alias(mc_alias_name, env=env) if mc_alias_name else (None, "")
    named = profile_name(profile, env)
    aws = load_profile(profile, env) if profile else None  # given: it gives the credentials
    site: AwsProfile | None = None  # AWS_PROFILE's or the default, once read
    endpoint_url = endpoint_url or alias_endpoint or getattr(credentials, "endpoint_url", None)
    endpoint_url = endpoint_url or endpoint_from_env(env)
    if not endpoint_url:
        site = aws or load_profile(named or "default", env, required=bool(named))
        endpoint_url = site.endpoint_url if site else None
    if not endpoint_url:
        raise ConfigurationError(
            "no S3 endpoint: pass endpoint_url='https://...' or set AWS_ENDPOINT_URL_S3 / "
            "AWS_ENDPOINT_URL, or name an mc alias (mc_alias=...) or an AWS profile with one"
        )
    endpoint_url = check_endpoint(endpoint_url)
    if credentials is not None:
        return (credentials.with_proxy(proxy) if proxy else credentials), endpoint_url
    if anon:
        return AnonymousS3(), endpoint_url
    if key or secret:
        if not (key and secret):
            raise ConfigurationError("static S3 keys need both key= and secret=")
        return StaticS3Credentials(key, secret, session_token), endpoint_url
    if provider is not None:
        return provider, endpoint_url
    if aws is None and token is None and token_file is None:
        try:
            token = find_token(env)
        except TokenNotFoundError as e:
            keys = [env.get(f"AWS_{k}") for k in ("ACCESS_KEY_ID", "SECRET_ACCESS_KEY")]
            if all(keys):
                return StaticS3Credentials(*keys, env.get("AWS_SESSION_TOKEN")), endpoint_url
            aws = site or load_profile(named or "default", env, required=bool(named))
            if aws is None or not (aws.access_key or aws.web_identity_token_file):
                raise TokenNotFoundError(
                    f"{e}\nFor static keys pass key=/secret=, set AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY or name an AWS profile (profile=, AWS_PROFILE); for "
                    "public data pass anon=True."
                ) from None
    if aws is not None:  # the profile's keys, or its token file exchanged for its role
        if static := profile_keys(aws):
            return static, endpoint_url
        token, token_file = None, aws.web_identity_token_file
        role_arn = role_arn or aws.role_arn
    source, role_arn = token_source(token, token_file), role_arn or env.get("AWS_ROLE_ARN")
    opts: dict[str, Any] = {"role_arn": role_arn or None, "duration": duration, "verify": verify}
    opts |= {"session_policy": session_policy, "proxy": proxy}
    key = (endpoint_url, sharing_key(source), *opts.values())
    with _lock:  # stores opened with the same options share one exchange per credential life
        if (sts := _exchangers.get(key)) is None:
            sts = _exchangers[key] = STSCredentials(endpoint_url, source, **opts)
        _recent.append(sts)
    return sts, endpoint_url


def profile_keys(aws: AwsProfile) -> StaticS3Credentials | None:
    """The static keys of an AWS profile; None for a token-file profile; else an error."""
    if aws.access_key and aws.secret_key:
        token = aws.session_token.reveal() if aws.session_token else None
        return StaticS3Credentials(aws.access_key, aws.secret_key.reveal(), token)
    if aws.web_identity_token_file and not aws.access_key:
        return None
    raise ConfigurationError(
        f"AWS profile {aws.name!r} has neither aws_access_key_id with aws_secret_access_key nor "
        "web_identity_token_file (SSO, credential_process and source_profile are not read): "
        "add the keys, or pass key=/secret="
    )


def shared_login(auth: SwiftAuth, proxy: str | None = None) -> SwiftAuth:
    """The auth in use for the same login (and ``proxy``) if there is one, else ``auth``: the
    stores a notebook opens with the same options share one Keystone or tempauth login."""
    key = (type(auth), proxy, auth.login_key())
    with _lock, contextlib.suppress(TypeError):  # TypeError: an option that cannot be hashed
        if key[2] is not None:
            auth = _logins.setdefault(key, auth)
            _recent.append(auth)
    return auth


_lock = threading.Lock()
_exchangers = weakref.WeakValueDictionary[tuple[Any, ...], STSCredentials]()
_logins = weakref.WeakValueDictionary[tuple[Any, ...], SwiftAuth]()
# The last ones handed out stay alive after their stores are gone: a notebook that drops a
# dataset and opens another reuses them (the caches above are weak, so this bounds them).
_recent: collections.deque[object] = collections.deque(maxlen=16)
