"""``clouds.yaml`` (openstacksdk's format): the named cloud's auth type, options and endpoint.

Not openstacksdk: some twenty packages (dogpile.cache, psutil, ...) and a second session layer
for a file lookup and a dict merge. Read as openstacksdk reads it for auth: the first of
``$OS_CLIENT_CONFIG_FILE``, ``./clouds.yaml``, ``~/.config/openstack/clouds.yaml``,
``/etc/openstack/clouds.yaml`` (or ``.yml``/``.json``), deep-merged with the first
``secure.yaml`` in the same places (``$OS_CLIENT_SECURE_FILE`` first); no vendor ``profile``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigurationError

_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class CloudConfig:
    """One cloud of ``clouds.yaml``: what ``KeystoneAuth`` is built from."""

    auth_type: str
    auth: dict[str, Any] = field(repr=False)
    region_name: str | None = None
    interface: str | None = None
    verify: bool | str = True


def config_dirs(env: Mapping[str, str]) -> list[Path]:
    """Where openstacksdk looks, in order: the working directory, the user's, the system's."""
    home = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return [Path.cwd(), home / "openstack", Path("/etc/openstack")]


def _first(env: Mapping[str, str], var: str, stem: str) -> Path | None:
    if env.get(var):
        return Path(env[var]).expanduser()
    candidates = (d / f"{stem}{suffix}" for d in config_dirs(env) for suffix in _SUFFIXES)
    return next((path for path in candidates if path.is_file()), None)


def _read(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigurationError(f"{path} does not exist") from None
    except (OSError, yaml.YAMLError) as e:
        raise ConfigurationError(f"{path} cannot be read: {type(e).__name__}") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path} is not a mapping with a 'clouds' key")
    return data


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        both = isinstance(value, Mapping) and isinstance(merged.get(key), Mapping)
        merged[key] = _merge(merged[key], value) if both else value
    return merged


def load_cloud(name: str, env: Mapping[str, str] | None = None) -> CloudConfig:
    """Cloud ``name`` of the first ``clouds.yaml`` found, with its ``secure.yaml`` merged in.

    Raises ConfigurationError when there is no file, no such cloud, or no ``auth`` in it.
    """
    env = os.environ if env is None else env
    path = _first(env, "OS_CLIENT_CONFIG_FILE", "clouds")
    if path is None:
        looked = ", ".join(str(d / "clouds.yaml") for d in config_dirs(env))
        raise ConfigurationError(
            f"cloud {name!r} (OS_CLOUD): no clouds.yaml found; looked at {looked} "
            "(OS_CLIENT_CONFIG_FILE names another)"
        )
    clouds = _read(path).get("clouds") or {}
    if (secure := _first(env, "OS_CLIENT_SECURE_FILE", "secure")) is not None:
        clouds = _merge(clouds, _read(secure).get("clouds") or {})
    if name not in clouds:
        known = ", ".join(sorted(clouds)) or "none"
        raise ConfigurationError(f"cloud {name!r} is not in {path} (clouds there: {known})")
    cloud = {k.replace("-", "_"): v for k, v in clouds[name].items()}
    if "profile" in cloud:
        raise ConfigurationError(
            f"cloud {name!r} in {path} uses profile {cloud['profile']!r}: vendor profiles are "
            "not read; put auth_url and region_name in the cloud itself"
        )
    auth = {k.replace("-", "_"): v for k, v in (cloud.get("auth") or {}).items()}
    if not auth:
        raise ConfigurationError(f"cloud {name!r} in {path} has no 'auth' section")
    verify: bool | str = str(Path(cloud["cacert"]).expanduser()) if cloud.get("cacert") else True
    if cloud.get("verify") is False or cloud.get("insecure") is True:
        verify = False
    first = (cloud.get("regions") or [None])[0]  # a name, or a mapping with one
    region = cloud.get("region_name") or (first["name"] if isinstance(first, Mapping) else first)
    return CloudConfig(
        auth_type=cloud.get("auth_type") or "password",
        auth=auth,
        region_name=region,
        interface=cloud.get("interface"),
        verify=verify,
    )
