"""Exceptions of zarrstores, by cause. Each message says what went wrong and what to do.

Auth failures are ``PermissionError``s: zarr and fsspec take only ``FileNotFoundError`` as
"missing", so an auth error propagates and never reads as a missing chunk.
"""

from __future__ import annotations


def shorten(name: str, limit: int = 40) -> str:
    """``name``, or its first ``limit`` characters and how long it is."""
    return name if len(name) <= limit else f"{name[:limit]}... ({len(name)} characters)"


class ZarrstoresError(Exception):
    """Base class of every zarrstores error."""


class ConfigurationError(ZarrstoresError, ValueError):
    """Options or environment do not describe a usable configuration."""


class AuthError(ZarrstoresError, PermissionError):
    """Credentials could not be obtained or were rejected."""


class TokenError(AuthError):
    """The OIDC access token is missing, unreadable or unusable."""


class TokenNotFoundError(TokenError):
    """No token in any of the places looked at."""


class TokenExpiredError(TokenError):
    """The token's ``exp`` is in the past."""


class STSError(AuthError):
    """The STS endpoint refused the exchange; carries the server's code and message."""

    def __init__(self, message: str, *, code: str = "", status: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class SwiftAuthError(AuthError):
    """Swift authentication failed (wrong user/key, expired pre-authenticated token, ...)."""


class AuthConnectionError(ZarrstoresError, ConnectionError):
    """The auth or STS endpoint could not be reached (after retries)."""


class TransientError(ZarrstoresError):
    """A failure worth retrying (connection reset, 5xx); raised internally and retried."""
