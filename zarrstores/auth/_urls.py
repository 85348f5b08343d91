"""Checking the URLs users pass, once, with a message that shows a correct one."""

from __future__ import annotations

from urllib.parse import urlsplit

from .errors import ConfigurationError


def check_url(url: str, name: str, example: str) -> str:
    """``url`` without a trailing slash; a ``ConfigurationError`` naming ``name`` and showing
    ``example`` unless it is an http(s) URL with a host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"{name} {url!r} is not an http(s) URL; pass e.g. {example!r}")
    return url.rstrip("/")
