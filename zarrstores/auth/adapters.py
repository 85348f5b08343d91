"""The same credentials for other S3 clients: aiobotocore/s3fs, obstore, minio-py, pyarrow."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .s3 import S3CredentialProvider, S3Credentials


def _metadata(creds: S3Credentials) -> dict[str, Any]:
    expiry = creds.expires_at if creds.expires_at is not None else time.time() + 10 * 365 * 86400
    metadata = creds.as_dict()
    metadata["token"] = metadata.pop("session_token")
    return metadata | {"expiry_time": datetime.fromtimestamp(expiry, UTC).isoformat()}


def botocore_credentials(provider: S3CredentialProvider) -> Any:
    """aiobotocore credentials fed by ``provider`` (None for anonymous access).

    botocore's own refresh windows (15/10 minutes) would ask for new credentials at every
    request when they live 15 minutes; these windows are set well inside ours, so aiobotocore
    only asks after our cache has already refreshed: one STS exchange per credential lifetime.
    Create one per event loop: it holds an ``asyncio.Lock``.
    """
    from aiobotocore.credentials import AioCredentials, AioRefreshableCredentials

    creds = provider.get()
    if creds is None:
        return None
    if creds.expires_at is None or not provider.can_refresh:
        return AioCredentials(*creds.as_dict().values())  # access key, secret key, token
    life = max(creds.expires_at - time.time(), 1.0)

    async def refresh() -> dict[str, Any]:
        fresh = await provider.aget()
        assert fresh is not None
        return _metadata(fresh)

    return AioRefreshableCredentials.create_from_metadata(
        _metadata(creds),
        refresh_using=refresh,
        method="zarrstores",
        advisory_timeout=min(30.0, 0.05 * life),
        mandatory_timeout=min(10.0, 0.02 * life),
    )


def aiobotocore_session(provider: S3CredentialProvider, *, every_signing: bool = False) -> Any:
    """An ``AioSession`` whose credentials come from ``provider`` (for ``s3fs.S3FileSystem(
    session=...)``). ``every_signing``: ask ``provider`` at each request it signs, so that its
    cache is the one place that refreshes (botocore's refresh windows never come into play)."""
    if every_signing:
        return _aio_session(lambda: _read_at_signing(provider))
    return _aio_session(lambda: botocore_credentials(provider))


def _read_at_signing(provider: S3CredentialProvider) -> Any:
    """aiobotocore credentials that read ``provider`` each time a request is signed."""
    from aiobotocore.credentials import AioCredentials
    from botocore.credentials import ReadOnlyCredentials

    class _FromProvider(AioCredentials):
        def __init__(self) -> None:
            super().__init__("", "", method="zarrstores")

        async def get_frozen_credentials(self) -> ReadOnlyCredentials:
            creds = await provider.aget()
            assert creds is not None  # anonymous access does not sign
            token = creds.session_token.reveal() if creds.session_token else None
            return ReadOnlyCredentials(creds.access_key, creds.secret_key.reveal(), token)

    return _FromProvider()


def _aio_session(credentials: Callable[[], Any]) -> Any:
    """An ``AioSession`` whose clients take their credentials from ``credentials()``."""
    from aiobotocore.session import AioSession
    from botocore.credentials import CredentialProvider

    # aiobotocore has no provider base class of its own; its resolver awaits ``load()``.
    class _Provider(CredentialProvider):
        METHOD = "zarrstores"
        CANONICAL_NAME = "custom-zarrstores"

        async def load(self) -> Any:
            return credentials()

    session = AioSession()
    session.get_component("credential_provider").insert_before("env", _Provider())
    return session


def obstore_credential_provider(provider: S3CredentialProvider) -> Any:
    """A callable for ``obstore.store.S3Store(credential_provider=...)``: synchronous, for
    obstore's sync API too (an async one needs a running loop); it blocks only during a refresh."""

    def credentials() -> dict[str, Any]:
        creds = provider.get()
        assert creds is not None, "use skip_signature=True for anonymous access"
        expires = creds.expires_at
        return {
            "access_key_id": creds.access_key,
            "secret_access_key": creds.secret_key.reveal(),
            "token": creds.session_token.reveal() if creds.session_token else None,
            "expires_at": datetime.fromtimestamp(expires, UTC) if expires else None,
        }

    return credentials


def minio_credentials_provider(provider: S3CredentialProvider) -> Any:
    """A ``minio.credentials.Provider`` (minio-py asks it before every request)."""
    from minio.credentials import Credentials
    from minio.credentials.providers import Provider

    class _Provider(Provider):
        def retrieve(self) -> Credentials:
            creds = provider.get()
            assert creds is not None, "minio-py has no anonymous provider: pass no credentials"
            expires = creds.expires_at
            expiration = datetime.fromtimestamp(expires, UTC) if expires else None
            return Credentials(**creds.as_dict(), expiration=expiration)

    return _Provider()
