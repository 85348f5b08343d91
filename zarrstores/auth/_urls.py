"""Checking the URLs users pass, once, with a message that shows a correct one."""

from __future__ import annotations

from urllib.parse import urlsplit

from .errors import ConfigurationError


def check_url(url: str, name: str, example: str) -> str:
    """``url`` without a trailing slash; a ``ConfigurationError`` naming ``name`` and showing
    ``example`` unless it is an http(s) URL with a host (and a port, if any, that is a number),
    without a user or password (never echoed), a query or a fragment."""
    parts = urlsplit(url)
    shown = hide_userinfo(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"{name} {shown!r} is not an http(s) URL; pass e.g. {example!r}")
    try:
        parts.port  # noqa: B018 (raises for a port that is not a number)
    except ValueError:
        raise ConfigurationError(
            f"{name} {shown!r} has a port that is not a number from 0 to 65535; "
            f"pass e.g. {example!r}"
        ) from None
    if "@" in parts.netloc:
        raise ConfigurationError(
            f"{name} {shown!r} holds a user or password: pass the URL without 'user:password@' "
            "and the credentials as options or environment variables"
        )
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise ConfigurationError(
            f"{name} {shown!r} has a query or fragment: pass the URL without '?...' or '#...', "
            f"e.g. {example!r}"
        )
    return url.rstrip("/")


def hide_userinfo(url: str) -> str:
    """``url`` with any ``user:password@`` shown as ``***@`` (proxies often carry one)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()
