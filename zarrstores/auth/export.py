"""Credentials as shell exports for the tools users run next to Python: swift, aws, mc, rclone."""

from __future__ import annotations

import re
import shlex
from urllib.parse import quote, urlsplit

from .s3 import S3Credentials
from .swift import SwiftCredentials


def swift_exports(creds: SwiftCredentials) -> dict[str, str]:
    """``OS_STORAGE_URL`` and ``OS_AUTH_TOKEN``, as ``swift auth`` prints them."""
    exports = {"OS_STORAGE_URL": creds.storage_url}
    if creds.token:
        exports["OS_AUTH_TOKEN"] = creds.token.reveal()
    return exports


def s3_exports(
    creds: S3Credentials,
    endpoint_url: str,
    *,
    alias: str = "zarrstores",
    region: str = "us-east-1",
) -> dict[str, str]:
    """AWS CLI variables, an ``MC_HOST_<alias>`` for ``mc`` and an rclone remote ``<alias>:``."""
    secret = creds.secret_key.reveal()
    token = creds.session_token.reveal() if creds.session_token else None
    exports = {
        "AWS_ACCESS_KEY_ID": creds.access_key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_DEFAULT_REGION": region,
    }
    if token:
        exports["AWS_SESSION_TOKEN"] = token
    url = urlsplit(endpoint_url)
    userinfo = ":".join(quote(p, safe="") for p in (creds.access_key, secret, token) if p)
    name = re.sub(r"\W", "_", alias)
    exports[f"MC_HOST_{name}"] = f"{url.scheme}://{userinfo}@{url.netloc}"
    remote = f"RCLONE_CONFIG_{name.upper()}"
    exports.update(
        {
            f"{remote}_TYPE": "s3",
            f"{remote}_PROVIDER": "Minio",
            f"{remote}_ENV_AUTH": "false",
            f"{remote}_ACCESS_KEY_ID": creds.access_key,
            f"{remote}_SECRET_ACCESS_KEY": secret,
            f"{remote}_ENDPOINT": endpoint_url,
            f"{remote}_REGION": region,
        }
    )
    if token:
        exports[f"{remote}_SESSION_TOKEN"] = token
    return exports


def format_exports(exports: dict[str, str], shell: str = "sh") -> str:
    """``export NAME='value'`` lines (``shell="fish"``: ``set -gx``), safe to paste or eval."""
    if shell == "fish":
        return "\n".join(f"set -gx {k} {shlex.quote(v)}" for k, v in exports.items())
    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in exports.items())
