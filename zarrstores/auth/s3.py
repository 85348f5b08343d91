"""S3 credential kinds behind one interface: static keys, anonymous (STS lives in ``sts``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ._secret import Secret, mask
from ._urls import check_url


@dataclass(frozen=True)
class S3Credentials:
    """One set of S3 keys; ``expires_at`` (epoch seconds) is None for keys that do not expire."""

    access_key: str
    secret_key: Secret = field(repr=False)
    session_token: Secret | None = field(default=None, repr=False)
    expires_at: float | None = None

    def __repr__(self) -> str:
        return f"S3Credentials(access_key={mask(self.access_key)!r}, expires_at={self.expires_at})"

    def as_dict(self) -> dict[str, str | None]:
        """``access_key``, ``secret_key``, ``session_token``: the keyword names of
        ``pyarrow.fs.S3FileSystem`` and ``minio.Minio``."""
        return {
            "access_key": self.access_key,
            "secret_key": self.secret_key.reveal(),
            "session_token": self.session_token.reveal() if self.session_token else None,
        }


class S3CredentialProvider:
    """Gives S3 credentials (None for anonymous access) and refreshes them on request."""

    #: endpoint the credentials belong to, when the kind knows it (STS credentials do)
    endpoint_url: str | None = None
    #: whether ``refresh_after_failure`` can yield new credentials
    can_refresh: bool = False
    #: how many times credentials were fetched from a server (STS exchanges)
    exchanges: int = 0

    def get(self) -> S3Credentials | None:
        """Current credentials, refreshed first if they are about to expire."""
        raise NotImplementedError

    async def aget(self) -> S3Credentials | None:
        """``get()`` for coroutines."""
        return self.get()

    def refresh_after_failure(self, failed: S3Credentials | None) -> S3Credentials | None:
        """The server rejected ``failed`` as expired; return fresh credentials (kinds that
        cannot refresh return what they have, and the caller reports the error)."""
        return self.get()

    async def arefresh_after_failure(self, failed: S3Credentials | None) -> S3Credentials | None:
        """``refresh_after_failure`` for coroutines."""
        return self.refresh_after_failure(failed)

    def describe(self) -> str:
        """What kind of credentials these are, for messages."""
        return type(self).__name__

    def with_proxy(self, proxy: str | None) -> S3CredentialProvider:
        """These credentials fetched through ``proxy``, without changing this object (kinds
        that make no requests of their own return themselves)."""
        return self


class StaticS3Credentials(S3CredentialProvider):
    """Fixed access key and secret (and optional session token)."""

    def __init__(self, access_key: str, secret_key: str, session_token: str | None = None) -> None:
        self._creds = S3Credentials(
            access_key, Secret(secret_key), Secret(session_token) if session_token else None
        )

    def get(self) -> S3Credentials:
        return self._creds

    def describe(self) -> str:
        return f"static keys {mask(self._creds.access_key)}"

    def __repr__(self) -> str:
        return f"StaticS3Credentials(access_key={mask(self._creds.access_key)!r})"


class AnonymousS3(S3CredentialProvider):
    """No credentials: unsigned requests, for public buckets and prefixes."""

    def get(self) -> None:
        return None

    def describe(self) -> str:
        return "anonymous access"

    def __repr__(self) -> str:
        return "AnonymousS3()"


def check_endpoint(url: str) -> str:
    """``url`` without a trailing slash, or a ConfigurationError saying what is wrong."""
    return check_url(url, "endpoint_url", "https://minio.example.org")
