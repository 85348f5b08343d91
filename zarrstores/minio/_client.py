"""S3 object requests through obstore (the Rust ``object_store`` S3 client): signing,
connections, proxies and TLS are the library's. Here: credentials from the auth core (read at
every request, refreshed after a rejection), the retry policy, and the one translation of S3
errors into Python's exceptions (``s3_error``), shared with ``minio://``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import obstore
from obstore.exceptions import AlreadyExistsError
from obstore.store import S3Store

from .._names import bucket_name_problem
from .._retry import DEFAULT_RETRY, RetryPolicy
from .._transport import (
    StorageError,
    StorageNotFoundError,
    StoragePermissionError,
    ca_file,
    ca_location,
    check_header_values,
    error_for_status,
    proxy_for,
    slice_whole,
    tls_error_text,
)
from ..auth import AnonymousS3, ConfigurationError, S3CredentialProvider, S3Credentials
from ..auth._secret import redact

log = logging.getLogger("zarrstores.minio")
T = TypeVar("T")

DEFAULT_REGION = "us-east-1"
DEFAULT_CONCURRENCY = 32
"""Requests in flight per store and event loop (chosen at +30 ms round trip: see
docs/performance.md)."""
SINGLE_PUT_MAX = 256 << 20
"""Objects up to this size (256 MiB) are written in one PUT, larger ones as multipart uploads
of ``PART_SIZE`` parts. At +30 ms round trip one PUT was as fast as any part size at 64 and
256 MiB, and multipart in obstore's default 5 MiB parts 20% slower (docs/performance.md)."""
PART_SIZE = 32 << 20


def put_options(size: int) -> dict[str, Any]:
    """obstore ``put`` keywords for a body of ``size`` bytes held in memory."""
    if size <= SINGLE_PUT_MAX:
        return {"use_multipart": False}
    return {"use_multipart": True, "chunk_size": PART_SIZE}


# What servers answer to session keys they no longer accept: MinIO says ExpiredToken,
# SeaweedFS InvalidAccessKeyId, others InvalidToken.
EXPIRED_CODES = frozenset(
    {"ExpiredToken", "ExpiredTokenException", "InvalidAccessKeyId", "InvalidToken"}
)
_RETRY_CODES = frozenset({"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable"})
# Refreshes per request before a rejection counts as final (a request can race a refresh).
_MAX_REFRESHES = 3
_CORRUPTED = (
    "the data arrived different from what was sent: it was corrupted on the way and not "
    "stored; write it again"
)
_HINTS = {
    "InvalidBucketName": "bucket names have 3-63 characters: lowercase letters, digits, '-' "
    "and '.', starting and ending with a letter or digit",
    "BadDigest": _CORRUPTED,
    "InvalidDigest": _CORRUPTED,
    "XAmzContentChecksumMismatch": _CORRUPTED,
    "XAmzContentSHA256Mismatch": _CORRUPTED,
    "SignatureDoesNotMatch": "the secret key does not belong to this access key: check "
    "secret= (AWS_SECRET_ACCESS_KEY)",
    "PreconditionFailed": "the object changed while it was read: read it again",
    "KeyTooLongError": "S3 keys have at most 1024 bytes, with the prefix: use a shorter key",
    # Ceph RGW's answer to a key over 1024 bytes
    "InvalidObjectName": "S3 keys have at most 1024 bytes, with the prefix: use a shorter key",
}
_STATUS = re.compile(r"status code: (\d{3})")
_TAG = re.compile(r"<(Code|Message)>([^<]*)</\1>")
_PROBE = "zarrstores-credentials-check"  # a folder listed to learn whether creds are let in


class S3Error(StorageError):
    """S3 answered with an error: ``status`` and S3's ``code`` (0 and "" when unreachable)."""


class S3PermissionError(S3Error, StoragePermissionError):
    """S3 refused the operation or the credentials."""


class S3NotFoundError(S3Error, StorageNotFoundError):
    """The bucket or key does not exist."""


S3_ERRORS = (S3Error, S3PermissionError, S3NotFoundError)


def missing_bucket(bucket: str, endpoint_url: str) -> S3NotFoundError:
    """The error for a bucket that does not exist, with how to create it."""
    return S3NotFoundError(
        f"bucket {bucket!r} does not exist at {endpoint_url}: create it first "
        f"(`mc mb ALIAS/{bucket}`, or fsspec.filesystem('minio').mkdir({bucket!r}))",
        status=404,
        code="NoSuchBucket",
    )


def s3_error(
    status: int,
    code: str,
    message: str,
    *,
    method: str,
    bucket: str,
    key: str,
    endpoint_url: str,
    provider: S3CredentialProvider,
    creds: S3Credentials | None,
    subresource: str = "",
) -> StorageError:
    """The one translation of an S3 error answer: ``FileNotFoundError`` for a missing bucket or
    key, ``PermissionError`` for a refusal, ``S3Error`` otherwise; no secret in the message."""
    code = code or str(status)
    if creds is not None:
        message = redact(message, creds.secret_key, creds.session_token)
    if key:
        where = f"minio://{bucket}/{key} at {endpoint_url}"
    elif subresource:
        where = f"the {subresource} of bucket {bucket!r} at {endpoint_url}"
    else:
        where = f"bucket {bucket!r} at {endpoint_url}"
    detail = f"{code}: {message}" if message else code
    if code in _HINTS:
        detail += f" ({_HINTS[code]})"
    if code == "NoSuchBucket" or (status == 404 and not key and not subresource):
        return missing_bucket(bucket, endpoint_url)
    if status == 404:
        return S3NotFoundError(f"{where} does not exist ({detail})", status=status, code=code)
    if status in (401, 403) or code in EXPIRED_CODES:
        writes = method.upper().startswith(
            ("PUT", "POST", "DELETE", "COPY", "CREATE", "UPLOAD", "COMPLETE", "ABORT")
        )
        action = "writing" if writes else "reading" if key else "this"
        who = provider.describe()
        if isinstance(provider, AnonymousS3):
            hint = "Anonymous access is not allowed here: the data is not public."
        elif code in EXPIRED_CODES and not provider.can_refresh:
            hint = (
                f"The server does not accept these credentials ({who}): expired or unknown; "
                "check key= (AWS_ACCESS_KEY_ID) or get new keys."
            )
        elif code in EXPIRED_CODES:
            hint = f"The server does not accept these credentials ({who}): expired or unknown."
        elif writes:
            hint = f"These credentials ({who}) do not allow writing here: read-only access?"
        else:
            hint = f"These credentials ({who}) do not allow {action} here."
        static = not (provider.can_refresh or isinstance(provider, AnonymousS3))
        if code == "AccessDenied" and static:
            hint += " Or they are wrong: Ceph RGW with STS says AccessDenied to those too."
        text = f"{method} {where} denied ({detail}). {hint}"
        return S3PermissionError(text, status=status or 403, code=code)
    return error_for_status(
        f"{method} {where} failed: HTTP {status} {detail}", status, code, kinds=S3_ERRORS
    )


class _InFlight:
    """At most ``free`` more requests in flight on one event loop: ``asyncio.Semaphore``'s job
    without its cost (~2 us per request, a tenth of this client's own): taking a free slot is a
    decrement, and a released slot passes straight to the next waiter."""

    __slots__ = ("free", "waiters")

    def __init__(self, size: int) -> None:
        self.free = size
        self.waiters: deque[asyncio.Future[None]] = deque()

    async def wait(self) -> None:
        """Wait for a slot (when none is free)."""
        slot = asyncio.get_running_loop().create_future()
        self.waiters.append(slot)
        try:
            await slot
        except asyncio.CancelledError:
            if slot.done() and not slot.cancelled():  # given a slot, then cancelled
                self.release()
            raise

    def release(self) -> None:
        while self.waiters:
            slot = self.waiters.popleft()
            if not slot.done():  # not cancelled while waiting
                slot.set_result(None)
                return
        self.free += 1


def _parse(error: Exception) -> tuple[int, str, str]:
    """(status, code, message) of an obstore error (status 0: the server was not reached)."""
    text = str(error)
    status = _STATUS.search(text)
    tags = dict(_TAG.findall(text))
    return (int(status.group(1)) if status else 0), tags.get("Code", ""), tags.get("Message", "")


class S3Client:
    """Path-style S3 requests to one endpoint with credentials from ``provider``; one obstore
    store per bucket, usable from any event loop and thread."""

    def __init__(
        self,
        endpoint_url: str,
        provider: S3CredentialProvider,
        *,
        region: str = DEFAULT_REGION,
        retry: RetryPolicy = DEFAULT_RETRY,
        verify: bool | str = True,
        max_connections: int = 64,
        max_concurrency: int = DEFAULT_CONCURRENCY,
        proxy: str | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.endpoint_url = endpoint_url.rstrip("/")
        self.provider = provider
        self.region = region
        self.retry = retry
        self.verify = verify
        self.max_connections = max_connections
        self.max_concurrency = max_concurrency
        """Requests in flight per event loop (obstore itself sets no limit)."""
        self.proxy = proxy
        """The HTTP(S) proxy of every request (else ``HTTPS_PROXY``... from the environment)."""
        self._stores: dict[str, S3Store] = {}
        self._limits: dict[asyncio.AbstractEventLoop, _InFlight] = {}
        self._checked: S3Credentials | None = None  # credentials known to be sendable

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_stores": {}, "_limits": {}}

    def _limit(self) -> _InFlight:
        """The running loop's limit of requests in flight (futures cannot cross loops)."""
        loop = asyncio.get_running_loop()
        limit = self._limits.get(loop)
        if limit is None:
            for old in [lp for lp in list(self._limits) if lp.is_closed()]:
                self._limits.pop(old, None)
            limit = self._limits[loop] = _InFlight(self.max_concurrency)
        return limit

    def store(self, bucket: str) -> S3Store:
        """The obstore store of ``bucket`` (made once)."""
        store = self._stores.get(bucket)
        if store is None:
            store = self._stores[bucket] = S3Store(bucket, **self.store_options())
        return store

    def store_options(self) -> dict[str, Any]:
        """``S3Store`` keyword arguments for this endpoint, credentials, CA and proxy."""
        timeout = f"{self.retry.timeout:g}s"
        client: dict[str, Any] = {
            "allow_http": True,
            "connect_timeout": timeout,
            "read_timeout": timeout,  # a stall fails; a large object moving slowly does not
            "timeout": "1d",
            "pool_max_idle_per_host": str(self.max_connections),
        }
        ca = ca_location(self.verify)
        if ca is False:
            client["allow_invalid_certificates"] = True
        elif isinstance(ca, str):
            with open(ca_file(ca), "rb") as f:
                client["root_certificate"] = f.read()
        proxy = proxy_for(self.endpoint_url, self.proxy)
        if proxy:
            client["proxy_url"] = proxy
        options: dict[str, Any] = {
            "endpoint": self.endpoint_url,
            "region": self.region,
            "virtual_hosted_style_request": False,
            "checksum_algorithm": "sha256",  # the server refuses a body corrupted on the way
            "client_options": client,
            "retry_config": {"max_retries": 0},  # retried here, by RetryPolicy
        }
        if isinstance(self.provider, AnonymousS3):
            options["skip_signature"] = True
        else:
            options["credential_provider"] = self._credentials
        return options

    def _credentials(self) -> dict[str, Any]:
        # obstore keeps them until 5 minutes before they expire, then asks again (at most every
        # 100 ms) until the auth core's cache has refreshed them; after a rejection the store
        # is made anew, which asks at once.
        creds = self.provider.get()
        assert creds is not None
        expires = creds.expires_at
        return {
            "access_key_id": creds.access_key,
            "secret_access_key": creds.secret_key.reveal(),
            "token": creds.session_token.reveal() if creds.session_token else None,
            "expires_at": datetime.fromtimestamp(expires, UTC) if expires else None,
        }

    async def close(self) -> None:
        """Forget the stores (obstore closes their connections)."""
        self._stores.clear()

    # -- the one request function ---------------------------------------------------------------
    async def call(
        self,
        method: str,
        bucket: str,
        key: str,
        send: Callable[[S3Store], Awaitable[T]],
        *,
        missing: Callable[[int, str], T] | None = None,
    ) -> T:
        """``send(store)``, retrying transient failures (RetryPolicy) and refreshing rejected
        session credentials; ``missing(status, code)`` gives the result for a 404/416 of a key,
        or a refusal to read a key a listing does not show (else it raises). Raises
        ``s3_error``'s exceptions, ``ConnectionError`` when the server cannot be reached,
        ``ConfigurationError`` when it answers about a bucket whose name cannot exist."""
        delays = None
        refreshes = 0
        while True:
            creds = await self.provider.aget()
            if creds is not self._checked and creds is not None:
                token = creds.session_token.reveal() if creds.session_token else None
                check_header_values("S3 access key or session token", creds.access_key, token)
                self._checked = creds
            limit = self._limit()
            if limit.free:
                limit.free -= 1
            else:
                await limit.wait()
            try:
                return await send(self.store(bucket))
            except Exception as e:  # obstore's errors carry the answer in their text
                failure = e
                status, code, message = _parse(e)
                if not status and _is_tls(e):
                    raise ConnectionError(tls_error_text(self.endpoint_url)) from None
            finally:
                limit.release()
            if missing is not None and status in (404, 416) and code != "NoSuchBucket":
                return missing(status, code)
            refreshable = creds is not None and self.provider.can_refresh
            if code == "AccessDenied" and refreshable and await self.rejects(bucket, creds):
                code = "ExpiredToken"  # a session that ended while the request was checked
            if code in EXPIRED_CODES and refreshable and refreshes < _MAX_REFRESHES:
                refreshes += 1
                log.info("%s rejected session credentials (%s); refreshing", bucket, code)
                await self.provider.arefresh_after_failure(creds)
                self._stores.pop(bucket, None)  # its credential cache holds the rejected ones
                continue
            problem = status and bucket_name_problem(bucket)
            if problem:  # what any answer about a bucket that cannot exist comes down to
                raise ConfigurationError(problem) from None
            # SeaweedFS refuses writes into a bucket that does not exist without saying why.
            if code == "AccessDenied" and method == "PUT" and await self._bucket_missing(bucket):
                raise missing_bucket(bucket, self.endpoint_url)
            if not status or status >= 500 or status == 429 or code in _RETRY_CODES:
                delays = delays or self.retry.delays()
                delay = next(delays, None)
                if delay is not None:
                    log.info(
                        "%s %s: %s; retrying in %.2f s", method, key, status or failure, delay
                    )
                    await asyncio.sleep(delay)
                    continue
                if not status:
                    raise ConnectionError(
                        f"{method} minio://{bucket}/{key} at {self.endpoint_url} failed after "
                        f"{self.retry.attempts} attempts: {_first_line(failure)}: check "
                        "endpoint_url and that the server is up"
                    ) from None
            error = s3_error(
                status,
                code,
                message,
                method=method,
                bucket=bucket,
                key=key,
                endpoint_url=self.endpoint_url,
                provider=self.provider,
                creds=creds,
            )
            if (
                missing is not None
                and isinstance(error, PermissionError)
                and await self._denied_but_missing(bucket, key)
            ):
                return missing(404, code)
            raise error from None

    async def rejects(self, bucket: str, creds: S3Credentials | None) -> bool:
        """Whether the server refuses ``creds`` as expired or unknown (asked with a listing
        signed with exactly these). SeaweedFS answers AccessDenied, not InvalidAccessKeyId, to
        a request whose session ends while it is being checked: this tells the two apart.
        Refreshable credentials refused there with AccessDenied are exchanged anew to tell."""
        if creds is None:
            return False
        options = self.store_options()
        del options["credential_provider"]
        token = creds.session_token.reveal() if creds.session_token else None
        probe = S3Store(
            bucket,
            access_key_id=creds.access_key,
            secret_access_key=creds.secret_key.reveal(),
            token=token,
            **options,
        )
        try:
            await obstore.list_with_delimiter_async(probe, _PROBE)
        except Exception as e:
            code = _parse(e)[1]
            if code != "AccessDenied" or not self.provider.can_refresh:
                return code in EXPIRED_CODES
        else:
            return False
        # Ceph RGW answers AccessDenied to every session it no longer accepts (expired, role
        # gone): when a session exchanged anew is let in, the old one was the problem.
        fresh = await self.provider.arefresh_after_failure(creds)
        if fresh is creds:
            return False
        self._stores.pop(bucket, None)
        try:
            await obstore.list_with_delimiter_async(self.store(bucket), _PROBE)
        except Exception:
            return False
        return True

    async def _bucket_missing(self, bucket: str) -> bool:
        try:
            await obstore.list_with_delimiter_async(self.store(bucket), "")
        except Exception as e:
            return _parse(e)[1] == "NoSuchBucket"
        return False

    # -- operations -----------------------------------------------------------------------------
    def get_object(
        self,
        bucket: str,
        key: str,
        byte_range: tuple[int, int | None] | None = None,
        *,
        view: bool = False,
    ) -> Awaitable[bytes | memoryview | None]:
        """The object's bytes (``byte_range``: start, exclusive end, negative start = suffix),
        None if it is missing; b"" for a range past its end. ``view``: a memoryview of
        obstore's buffer instead of a copy as ``bytes`` (one copy in memory, not two)."""
        wrap: Callable[[Any], bytes | memoryview] = memoryview if view else bytes

        async def send(store: S3Store) -> bytes | memoryview | None:
            if byte_range is None:
                return wrap(await (await obstore.get_async(store, key)).bytes_async())
            start, end = byte_range
            if start < 0:
                options: dict[str, Any] = {"range": {"suffix": -start}}
            elif end is None:
                options = {"range": {"offset": start}}
            elif end <= start:
                await obstore.head_async(store, key)  # b"" for an object that exists
                return b""
            else:
                options = {"range": (start, end)}
            try:
                result = await obstore.get_async(store, key, options=options)
            except Exception as e:
                if "non-partial response" not in str(e):
                    raise
                # A server (or a cache in front of it) that ignored Range sent everything.
                whole = await (await obstore.get_async(store, key)).bytes_async()
                return slice_whole(bytes(whole), start, end)
            return wrap(await result.bytes_async())

        return self.call("GET", bucket, key, send, missing=_missing_read)

    def head_object(self, bucket: str, key: str) -> Awaitable[int | None]:
        """The object's size, None if it is missing."""

        async def send(store: S3Store) -> int:
            return int((await obstore.head_async(store, key))["size"])

        return self.call("HEAD", bucket, key, send, missing=_missing_read)

    async def _denied_but_missing(self, bucket: str, key: str) -> bool:
        """Whether a refused read was of a key that does not exist, as a listing with the same
        credentials shows. Without the right to list the whole bucket, S3 (AWS, Ceph RGW)
        answers 403, not 404, for a missing key: a public prefix's readers meet that when
        zarr probes for metadata files. A listing refused too leaves the refusal standing."""
        try:
            async for name, _ in self.list_objects(bucket, key, delimiter="/"):
                if name == key:
                    return False
        except PermissionError:
            return False
        return True

    async def put_object(self, bucket: str, key: str, data: bytes | memoryview) -> None:
        """Store ``data`` under ``key`` (one PUT up to ``SINGLE_PUT_MAX``, else multipart);
        the server checks it against its SHA-256 and stores nothing when it arrived corrupted
        (``BadDigest``)."""

        async def send(store: S3Store) -> None:
            await obstore.put_async(store, key, data, **put_options(len(data)))

        await self.call("PUT", bucket, key, send)

    async def put_object_if_absent(
        self, bucket: str, key: str, data: bytes | memoryview
    ) -> bool:
        """Store ``data`` under ``key`` unless the key exists: one conditional PUT
        (``If-None-Match: *``, so at most 5 GiB); False when the object was already there."""

        async def send(store: S3Store) -> bool:
            try:
                await obstore.put_async(store, key, data, mode="create", use_multipart=False)
            except AlreadyExistsError:
                return False
            return True

        return await self.call("PUT", bucket, key, send)

    async def delete_objects(self, bucket: str, keys: list[str]) -> None:
        """Delete ``keys`` (missing ones are no error), in batches."""

        async def send(store: S3Store) -> None:
            await obstore.delete_async(store, keys if len(keys) > 1 else keys[0])

        await self.call("DELETE", bucket, keys[0] if len(keys) == 1 else "", send)

    async def list_objects(
        self, bucket: str, prefix: str = "", delimiter: str | None = None
    ) -> AsyncIterator[tuple[str, bool]]:
        """(key, is_prefix) under ``prefix`` (a plain string prefix, not only whole path
        segments), page by page."""
        # obstore lists whole path segments: list the folder and keep what starts with prefix.
        folder = prefix.rpartition("/")[0]

        async def listing(store: S3Store) -> Any:
            if delimiter:
                return await obstore.list_with_delimiter_async(store, folder or None)
            return obstore.list(store, folder or None)

        result = await self.call("GET", bucket, "", listing)
        if delimiter:
            for item in result["objects"]:
                if item["path"].startswith(prefix):
                    yield item["path"], False
            for sub in result["common_prefixes"]:
                if sub.startswith(prefix):
                    yield sub + "/", True
            return
        stream = aiter(result)

        async def next_page(_: S3Store) -> Any:
            return await anext(stream, None)

        while (page := await self.call("GET", bucket, "", next_page)) is not None:
            for item in page:
                if item["path"].startswith(prefix):
                    yield item["path"], False


def _missing_read(status: int, code: str) -> Any:
    """A read of a missing key: None; of a range past the end (416): b"" (HEAD has none)."""
    return None if status == 404 else b""


def _is_tls(error: Exception) -> bool:
    text = str(error).lower()
    return "certificate" in text or "tls" in text or "ssl" in text


def _first_line(error: Exception) -> str:
    """What went wrong, without obstore's request description ("Error performing GET ... -")."""
    return str(error).split("\n", 1)[0].rpartition(" - ")[2][:120]
