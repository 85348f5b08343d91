"""``MinioStore``: a zarr v3 store (and a mapping of key to bytes) in an S3/MinIO bucket."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .._names import check_s3_key
from .._retry import DEFAULT_RETRY, RetryPolicy
from .._store import ByteRange, ObjectStore
from ..auth import S3CredentialProvider, s3_credentials
from ..auth._options import check_s3_options
from ..auth.tokens import TokenSource
from ._client import DEFAULT_CONCURRENCY, DEFAULT_REGION, S3Client

__all__ = ["MinioStore"]


Token = str | os.PathLike[str] | TokenSource | Callable[[], str] | None


def credentials_from_options(
    endpoint_url: str | None, token: Token, options: dict[str, Any]
) -> tuple[S3CredentialProvider, str]:
    """``s3_credentials`` with this package's option names (``mc_alias``; ``token`` may be a
    path object; ``proxy`` reaches the STS exchanges, a given provider is not changed)."""
    options = dict(options)
    if "mc_alias" in options:
        options["mc_alias_name"] = options.pop("mc_alias")
    if isinstance(token, os.PathLike):
        options["token_file"], token = token, None
    check_s3_options(options, also=_STORE_OPTIONS)
    return s3_credentials(endpoint_url, token=token, **options)


_STORE_OPTIONS = ("mc_alias", "read_only", "region", "retry", "max_connections", "max_concurrency")


@dataclass(slots=True)
class _BucketDriver:
    """``ObjectDriver`` over one bucket: the names are object keys in it."""

    client: S3Client
    bucket: str

    # The client's coroutines themselves (no layer of our own per request).
    def get(self, path: str, byte_range: ByteRange | None = None) -> Awaitable[bytes | None]:
        # zarr wraps the buffer without copying it: obstore's is the only copy.
        return self.client.get_object(self.bucket, path, byte_range, view=True)  # type: ignore[return-value]

    def head(self, path: str) -> Awaitable[int | None]:
        return self.client.head_object(self.bucket, path)

    def put(self, path: str, data: bytes | memoryview) -> Awaitable[None]:
        return self.client.put_object(self.bucket, path, data)

    async def put_if_absent(self, path: str, data: bytes | memoryview) -> bool:
        delays = iter((0.05, 0.1, 0.2, 0.4))
        while True:
            try:
                return await self.client.put_object_if_absent(self.bucket, path, data)
            except OSError as e:
                # 409: another conditional write of this key is in flight; ask again
                delay = next(delays, None)
                if getattr(e, "status", 0) != 409 or delay is None:
                    raise
            await asyncio.sleep(delay)

    async def delete(self, paths: list[str]) -> None:
        await self.client.delete_objects(self.bucket, paths)

    def list(self, prefix: str, delimiter: str | None = None) -> AsyncIterator[tuple[str, bool]]:
        return self.client.list_objects(self.bucket, prefix, delimiter)


class MinioStore(ObjectStore):
    """A zarr v3 store under ``prefix`` in the S3/MinIO bucket ``bucket``; also a
    ``MutableMapping`` of key to bytes with ``keys()``, ``listdir()``, ``url`` (the HTTP(S)
    address of its root) and ``fsspec_url`` (``minio://...``).

    Credentials, by default, come from the OIDC ``token`` (a JWT, a path, a callable or a
    ``TokenSource``; else ``token_file=`` or discovery: ``BEARER_TOKEN_FILE``...) exchanged
    via STS and refreshed before they expire. ``options`` may instead give ``key``/``secret``
    (``session_token``), ``mc_alias``, an AWS ``profile`` (``~/.aws/credentials``),
    ``anon=True`` or a ``credentials`` provider, and ``role_arn``, ``duration``, ``verify`` (a
    CA file or directory; see docs/network.md), ``proxy``, ``region``, ``retry`` (a
    ``RetryPolicy``), ``max_connections`` (idle connections kept), ``max_concurrency``
    (requests in flight, see docs/performance.md). The endpoint is ``endpoint_url``, else
    ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, the ``mc`` alias' or the AWS profile's.

    A missing key reads as missing; a missing bucket raises ``FileNotFoundError``, a refusal
    ``PermissionError`` (never a secret in its message). Raises ``ConfigurationError`` (a
    ``ValueError``) for unusable options, ``TokenError`` when no usable token is found.
    """

    protocol = "minio"
    container_kind = "S3 bucket"

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        token: Token = None,
        read_only: bool = False,
        region: str = DEFAULT_REGION,
        retry: RetryPolicy = DEFAULT_RETRY,
        max_connections: int = 64,
        max_concurrency: int = DEFAULT_CONCURRENCY,
        **options: Any,
    ) -> None:
        super().__init__(bucket, prefix, read_only=read_only)
        self.proxy: str | None = options.get("proxy")
        """The HTTP(S) proxy of every request (else ``HTTPS_PROXY``... from the environment)."""
        self.credentials, self.endpoint_url = credentials_from_options(endpoint_url, token, options)
        """Where the S3 credentials come from (``credentials.exchanges`` counts STS calls)."""
        self.region = region
        self._verify = options.get("verify", True)  # both as minio.acl's filesystem needs them
        self._client = S3Client(
            self.endpoint_url,
            self.credentials,
            region=region,
            retry=retry,
            verify=self._verify,
            max_connections=max_connections,
            max_concurrency=max_concurrency,
            proxy=self.proxy,
        )

    @property
    def bucket(self) -> str:
        """The bucket's name."""
        return self.container

    def _check_key(self, key: str) -> None:
        super()._check_key(key)
        check_s3_key(self._path(key))

    def _make_driver(self) -> _BucketDriver:
        # obstore's client serves every event loop: the drivers of all loops share it.
        return _BucketDriver(self._client, self.container)

    def _identity(self) -> tuple[Any, ...]:
        return (self.endpoint_url,)

    def _http_root(self) -> str:
        return self.endpoint_url  # path-style: <endpoint>/<bucket>/<key>

    def __repr__(self) -> str:
        mode = ", read_only=True" if self.read_only else ""
        return f"MinioStore({self.fsspec_url!r}, endpoint_url={self.endpoint_url!r}{mode})"
