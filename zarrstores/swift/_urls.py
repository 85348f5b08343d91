"""The two forms of ``swift://`` URLs: ``swift://<container>/<path>`` (the account is the
credentials') and swiftspec's ``swift://<host>/<account>/<container>/<path>``, which names the
account too and must then name the credentials' own."""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

from ..auth.errors import ConfigurationError

# An account is "<reseller prefix>_<name>": AUTH_test, dkrz_0a1b..., KEY_...
_ACCOUNT = re.compile(r"[A-Za-z][A-Za-z0-9-]*_[^/]+")
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def split_account(path: str) -> tuple[str | None, str]:
    """``("<host>/<account>", "<container>/<path>")`` for swiftspec's form (a host, an account
    and at least a container), else ``(None, path)``."""
    parts = path.split("/", 2)
    host = parts[0] == "localhost" or "." in parts[0] or ":" in parts[0]
    if len(parts) == 3 and parts[2] and host and _ACCOUNT.fullmatch(parts[1]):
        return f"{parts[0]}/{parts[1]}", parts[2]
    return None, path


def _netloc(netloc: str, scheme: str = "https") -> str:
    host, _, port = netloc.lower().rpartition(":") if ":" in netloc else (netloc.lower(), "", "")
    return host if port in ("", _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"


def check_account(location: str, storage_url: str) -> None:
    """Raise ``ConfigurationError`` unless ``location`` (``<host>/<account>`` from a
    swiftspec-style URL) is the account of ``storage_url``."""
    host, account = location.split("/", 1)
    url = urlsplit(storage_url)
    ours_host = _netloc(url.netloc, url.scheme)
    ours_account = url.path.rstrip("/").rpartition("/")[2]
    # swiftspec always speaks https: the URL's host carries no scheme of its own
    if (_netloc(host, url.scheme), account) != (ours_host, ours_account):
        raise ConfigurationError(
            f"the URL names account {account[:40]} at {host[:60]}, the credentials are for "
            f"{ours_account[:40]} at {ours_host[:60]}: use that account's credentials, or "
            "swift://<container>/<path>"
        )


def quote_name(container: str, name: str | None = None) -> str:
    """``/container[/name]`` URL-quoted segment by segment."""
    return quote(f"/{container}" if name is None else f"/{container}/{name}", safe="/")
