"""Credentials as shell exports for the tools users run next to Python: swift, aws, mc, rclone."""

from __future__ import annotations

import re
import shlex
from urllib.parse import quote, urlsplit

from ._secret import Secret
from .keystone import KeystoneAuth, env_var
from .s3 import S3Credentials
from .swift import SwiftAuth, SwiftCredentials


def swift_exports(creds: SwiftCredentials, auth: SwiftAuth | None = None) -> dict[str, str]:
    """``OS_STORAGE_URL`` and ``OS_AUTH_TOKEN``, as ``swift auth`` prints them; for a Keystone
    ``auth`` also what the ``openstack`` CLI needs: that Keystone token (``OS_AUTH_TYPE=v3token``,
    ``OS_TOKEN``, ``OS_PROJECT_ID``), or the application credential itself (Keystone does not let
    its tokens make new ones); with ``OS_AUTH_URL``, ``OS_INTERFACE`` and ``OS_REGION_NAME``."""
    exports = {"OS_STORAGE_URL": creds.storage_url}
    if creds.token:
        exports["OS_AUTH_TOKEN"] = creds.token.reveal()
    if not (isinstance(auth, KeystoneAuth) and creds.token and auth.auth_url):
        return exports
    exports |= {"OS_AUTH_URL": auth.auth_url, "OS_INTERFACE": auth.interface}
    if auth.auth_type == "v3applicationcredential":
        exports["OS_AUTH_TYPE"] = auth.auth_type
        for name, value in auth.options.items():
            if name != "auth_url":
                exports[env_var(name)] = value.reveal() if isinstance(value, Secret) else value
    else:
        exports |= {"OS_AUTH_TYPE": "v3token", "OS_TOKEN": creds.token.reveal()}
        if project := auth.identity().project_id:
            exports["OS_PROJECT_ID"] = project
    if auth.region_name:
        exports["OS_REGION_NAME"] = auth.region_name
    return exports


def s3_exports(
    creds: S3Credentials, endpoint_url: str, *, alias: str = "zarrstores", region: str = "us-east-1"
) -> dict[str, str]:
    """AWS CLI variables, an ``MC_HOST_<alias>`` for ``mc`` and an rclone remote ``<alias>:``."""
    secret = creds.secret_key.reveal()
    token = creds.session_token.reveal() if creds.session_token else None
    keys = {"ACCESS_KEY_ID": creds.access_key, "SECRET_ACCESS_KEY": secret, "SESSION_TOKEN": token}
    keys = {k: v for k, v in keys.items() if v}
    exports = {f"AWS_{k}": v for k, v in keys.items()}
    exports |= {"AWS_ENDPOINT_URL": endpoint_url, "AWS_DEFAULT_REGION": region}
    url = urlsplit(endpoint_url)
    userinfo = ":".join(quote(p, safe="") for p in keys.values())
    name = re.sub(r"\W", "_", alias)
    exports[f"MC_HOST_{name}"] = f"{url.scheme}://{userinfo}@{url.netloc}"
    rclone = {"TYPE": "s3", "PROVIDER": "Minio", "ENV_AUTH": "false", "ENDPOINT": endpoint_url}
    rclone |= {"REGION": region, **keys}
    return exports | {f"RCLONE_CONFIG_{name.upper()}_{k}": v for k, v in rclone.items()}


def format_exports(exports: dict[str, str], shell: str = "sh") -> str:
    """``export NAME='value'`` lines (``shell="fish"``: ``set -gx``), safe to paste or eval."""
    line = "set -gx {} {}" if shell == "fish" else "export {}={}"
    return "\n".join(line.format(k, shlex.quote(v)) for k, v in exports.items())
