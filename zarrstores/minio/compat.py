"""InfnMinio-style helpers: a ``minio.Minio`` client and pyarrow keywords from an OIDC token."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from .._transport import ca_file, ca_location
from ..auth import AnonymousS3, minio_credentials_provider
from ._client import DEFAULT_REGION
from .store import Token, credentials_from_options

__all__ = ["from_token", "get_credentials"]


def from_token(
    token: Token = None,
    endpoint: str | None = None,
    *,
    region: str = DEFAULT_REGION,
    **options: Any,
) -> Any:
    """A ``minio.Minio`` client whose credentials come from ``token`` via STS and are
    exchanged again before they expire (``pip install 'zarrstores[minio]'``).

    ``token``: the OIDC token, its file, a callable or ``None`` (discovery:
    ``BEARER_TOKEN_FILE``...); ``endpoint``: ``https://host[:port]``, else
    ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``. ``options`` as for ``MinioStore``
    (``role_arn``, ``duration``, ``verify``...).
    """
    try:
        from minio import Minio
    except ImportError:
        raise ImportError("from_token needs minio-py: pip install 'zarrstores[minio]'") from None
    provider, endpoint_url = credentials_from_options(endpoint, token, options)
    url = urlsplit(endpoint_url)
    verify = ca_location(options.get("verify", True))  # the package's one CA policy
    anonymous = isinstance(provider, AnonymousS3)
    http_client = None
    if isinstance(verify, str):  # a private CA bundle or directory
        import urllib3

        http_client = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=ca_file(verify))
    return Minio(
        url.netloc,
        secure=url.scheme == "https",
        region=region,  # minio-py would otherwise ask the server for every bucket's region
        # minio-py signs nothing without credentials: anonymous access
        credentials=None if anonymous else minio_credentials_provider(provider),
        cert_check=verify is not False,
        http_client=http_client,
    )


def get_credentials(
    endpoint: str | None = None,
    token: Token = None,
    *,
    region: str = DEFAULT_REGION,
    **options: Any,
) -> dict[str, Any]:
    """``access_key``, ``secret_key``, ``session_token`` and ``region`` for ``token`` at
    ``endpoint`` (``{"anonymous": True, "region": ...}`` with ``anon=True``): the keywords of
    ``pyarrow.fs.S3FileSystem(endpoint_override=endpoint, **creds)`` (without ``region`` pyarrow
    asks AWS where the bucket is). They expire (``duration``, one hour by default): call again.

    Sets ``AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_REQUIRED`` unless it is set: pyarrow's AWS
    SDK would otherwise send checksums in streamed trailers, which S3 servers other than AWS
    refuse (Ceph RGW before Squid answers 400 or 411 to every multipart upload).
    """
    os.environ.setdefault("AWS_REQUEST_CHECKSUM_CALCULATION", "WHEN_REQUIRED")
    provider, _ = credentials_from_options(endpoint, token, options)
    creds = provider.get()
    keys = {"anonymous": True} if creds is None else creds.as_dict()
    return {**keys, "region": region}
