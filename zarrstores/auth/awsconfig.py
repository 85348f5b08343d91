"""AWS shared config profiles (``~/.aws/credentials`` and ``~/.aws/config``), as the aws CLI
and s3fs read them, parsed by botocore's own config loader: static keys, an OIDC token file
with a role (``web_identity_token_file``/``role_arn``), and the S3 endpoint of the profile.
Profiles that need AWS services (SSO, ``credential_process``, role chains) are not read."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._secret import Secret
from .errors import ConfigurationError


@dataclass(frozen=True, repr=False)
class AwsProfile:
    """What one profile says: keys, or a token file and role; and where S3 is."""

    name: str
    access_key: str | None = None
    secret_key: Secret | None = None
    session_token: Secret | None = None
    web_identity_token_file: str | None = None
    role_arn: str | None = None
    endpoint_url: str | None = None

    def __repr__(self) -> str:
        return f"AwsProfile({self.name!r}, endpoint_url={self.endpoint_url!r})"


def profile_name(given: str | None, env: Mapping[str, str]) -> str | None:
    """``given``, else ``AWS_PROFILE`` (``AWS_DEFAULT_PROFILE``); None when neither is set."""
    return given or env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE") or None


def load_profile(name: str, env: Mapping[str, str], *, required: bool = True) -> AwsProfile | None:
    """Profile ``name`` from the shared credentials and config files (which
    ``AWS_SHARED_CREDENTIALS_FILE`` and ``AWS_CONFIG_FILE`` name). ``required``: a
    ``ConfigurationError`` naming the profiles there when it is missing, else None."""
    creds_file = _path(env, "AWS_SHARED_CREDENTIALS_FILE", "credentials")
    config_file = _path(env, "AWS_CONFIG_FILE", "config")
    creds = _read(creds_file, config=False).get(name, {})
    loaded = _read(config_file, config=True)
    config = loaded.get("profiles", {}).get(name, {})
    if not creds and not config:
        if not required:
            return None
        known = sorted({*_read(creds_file, config=False), *loaded.get("profiles", {})})
        raise ConfigurationError(
            f"AWS profile {name!r} is in neither {creds_file} nor {config_file} (profiles there: "
            f"{', '.join(known) or 'none'}); add it with `aws configure --profile {name}`"
        )
    merged = {**config, **creds}  # keys in the credentials file win, as in the aws CLI
    services = loaded.get("services", {}).get(config.get("services", ""), {})
    endpoint = _s3_setting(services) or _s3_setting(config) or config.get("endpoint_url")
    secret, token = merged.get("aws_secret_access_key"), merged.get("aws_session_token")
    return AwsProfile(
        name,
        access_key=merged.get("aws_access_key_id"),
        secret_key=Secret(secret) if secret else None,
        session_token=Secret(token) if token else None,
        web_identity_token_file=merged.get("web_identity_token_file"),
        role_arn=merged.get("role_arn"),
        endpoint_url=endpoint,
    )


def _s3_setting(section: Mapping[str, Any]) -> str | None:
    nested = section.get("s3")
    return nested.get("endpoint_url") if isinstance(nested, dict) else None


def _path(env: Mapping[str, str], var: str, name: str) -> Path:
    return Path(env.get(var) or Path.home() / ".aws" / name).expanduser()


def _read(path: Path, *, config: bool) -> dict[str, Any]:
    import botocore.configloader
    import botocore.exceptions

    if not os.path.isfile(path):
        return {}
    try:
        if config:
            return botocore.configloader.load_config(str(path))
        return botocore.configloader.raw_config_parse(str(path))
    except botocore.exceptions.BotoCoreError as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigurationError(f"AWS config file {path} cannot be read: {first}") from None
