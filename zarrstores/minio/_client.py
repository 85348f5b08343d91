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
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, TypeVar

import obstore
from obstore.exceptions import AlreadyExistsError
from obstore.store import S3Store

from .._exit import guard_exit
from .._names import bucket_name_problem, check_s3_bucket
from .._retry import DEFAULT_RETRY, RetryPolicy
from .._transport import (
    StorageError,
    StorageNotFoundError,
    StoragePermissionError,
    ca_file,
    ca_location,
    check_header_values,
    check_unreachable,
    check_version,
    error_for_status,
    proxy_for,
    slice_whole,
    tls_error_text,
)
from ..auth import AnonymousS3, ConfigurationError, S3CredentialProvider, S3Credentials
from ..auth._secret import redact
from ..auth.errors import shorten

log = logging.getLogger("zarrstores.minio")
T = TypeVar("T")

DEFAULT_REGION = "us-east-1"
DEFAULT_CONCURRENCY = 32
"""Requests in flight per store and event loop (best at +30 ms round trip: docs/performance.md)."""
SINGLE_PUT_MAX = 256 << 20
"""Objects up to 256 MiB go up in one PUT, larger in ``PART_SIZE`` parts: at +30 ms one PUT was as
fast as any part size, obstore's default 5 MiB parts 20% slower (docs/performance.md)."""
PART_SIZE = 32 << 20


# What servers answer to session keys they no longer accept: MinIO says ExpiredToken,
# SeaweedFS InvalidAccessKeyId, others InvalidToken.
EXPIRED_CODES = frozenset(
    {"ExpiredToken", "ExpiredTokenException", "InvalidAccessKeyId", "InvalidToken"}
)
_WRITE_METHODS = ("PUT", "POST", "DELETE", "COPY", "CREATE", "UPLOAD", "COMPLETE", "ABORT")
_RETRY_CODES = frozenset({"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable"})
# Refreshes per request before a rejection counts as final (a request can race a refresh).
_MAX_REFRESHES = 3
_HINTS = {
    "InvalidBucketName": "bucket names have 3-63 characters: lowercase letters, digits, '-' "
    "and '.', starting and ending with a letter or digit",
    "SignatureDoesNotMatch": "the secret key does not belong to this access key: check "
    "secret= (AWS_SECRET_ACCESS_KEY)",
    "PreconditionFailed": "the object changed while it was read: read it again",
    **dict.fromkeys(
        ("BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch", "XAmzContentSHA256Mismatch"),
        "the data arrived different from what was sent: it was corrupted on the way and not "
        "stored; write it again",
    ),
    **dict.fromkeys(  # InvalidObjectName: Ceph RGW's answer to a key over 1024 bytes
        ("KeyTooLongError", "InvalidObjectName"),
        "S3 keys have at most 1024 bytes, with the prefix: use a shorter key",
    ),
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
        who = provider.describe()
        static = not (provider.can_refresh or isinstance(provider, AnonymousS3))
        if isinstance(provider, AnonymousS3):
            hint = "Anonymous access is not allowed here: the data is not public."
        elif code in EXPIRED_CODES:
            hint = f"The server does not accept these credentials ({who}): expired or unknown"
            hint += "; check key= (AWS_ACCESS_KEY_ID) or get new keys." if static else "."
        elif method.upper().startswith(_WRITE_METHODS):
            hint = f"These credentials ({who}) do not allow writing here: read-only access?"
        else:
            hint = f"These credentials ({who}) do not allow {'reading' if key else 'this'} here."
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


async def _list_code(store: S3Store) -> str | None:
    """S3's error code for a listing with ``store`` ("" if none), None when it succeeds."""
    try:
        await obstore.list_with_delimiter_async(store, _PROBE)
    except Exception as e:
        return _parse(e)[1]
    return None


@dataclass(eq=False, repr=False)
class S3Client:
    """Path-style S3 requests to one endpoint with credentials from ``provider``; one obstore
    store per bucket, usable from any event loop and thread."""

    endpoint_url: str
    provider: S3CredentialProvider
    _: KW_ONLY
    region: str = DEFAULT_REGION
    retry: RetryPolicy = DEFAULT_RETRY
    verify: bool | str = True
    max_connections: int = 64
    max_concurrency: int = DEFAULT_CONCURRENCY  # in flight per event loop: obstore sets no limit
    proxy: str | None = None
    _stores: dict[str, tuple[Any, S3Store]] = field(default_factory=dict, init=False)
    _limits: dict[asyncio.AbstractEventLoop, _InFlight] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {self.max_concurrency}")
        self.endpoint_url = self.endpoint_url.rstrip("/")

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
            guard_exit()  # obstore's threads may still be in Python when the process ends
        return limit

    def store(self, bucket: str, creds: S3Credentials | None) -> S3Store:
        """The obstore store of ``bucket`` signing with exactly ``creds``, made anew when they
        change (one asking the provider could sign with older keys: a rejection, one more STS)."""
        if (made := self._stores.get(bucket)) is None or made[0] != creds:
            made = self._stores[bucket] = (creds, self._new_store(bucket, creds))
        return made[1]

    def _new_store(self, bucket: str, creds: S3Credentials | None) -> S3Store:
        """An ``S3Store`` for this endpoint, CA and proxy, signing with ``creds`` (None: not).
        Keys come checked (``check_s3_key``: by MinioStore, or minio:// sends others through
        s3fs); the bucket is checked here, once, as obstore would panic on some names."""
        check_s3_bucket(bucket)
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
        if proxy := proxy_for(self.endpoint_url, self.proxy):
            client["proxy_url"] = proxy
        options: dict[str, Any] = {
            "endpoint": self.endpoint_url,
            "region": self.region,
            "virtual_hosted_style_request": False,
            "checksum_algorithm": "sha256",  # the server refuses a body corrupted on the way
            "client_options": client,
            "retry_config": {"max_retries": 0},  # retried here, by RetryPolicy
        }
        if creds is None:
            options["skip_signature"] = True
        else:
            token = creds.session_token.reveal() if creds.session_token else None
            check_header_values("S3 access key or session token", creds.access_key, token)
            secret = {"secret_access_key": creds.secret_key.reveal()}
            options.update(secret, access_key_id=creds.access_key)
            if token:
                options["session_token"] = token
        return S3Store(bucket, **options)

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
            store = self.store(bucket, creds)
            limit = self._limit()
            if limit.free:
                limit.free -= 1
            else:
                await limit.wait()
            try:
                return await send(store)
            except (ValueError, TypeError):
                raise  # refused before sending (obstore's are not these): nothing to retry
            except Exception as e:  # obstore's errors carry the answer in their text
                failure = e
                status, code, message = _parse(e)
                if not status and any(w in str(e).lower() for w in ("certificate", "tls", "ssl")):
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
                continue
            problem = status and bucket_name_problem(bucket)
            if problem:  # what any answer about a bucket that cannot exist comes down to
                raise ConfigurationError(problem) from None
            # SeaweedFS refuses writes into a bucket that does not exist without saying why.
            put_denied = code == "AccessDenied" and method == "PUT"
            if put_denied and await _list_code(self.store(bucket, creds)) == "NoSuchBucket":
                raise missing_bucket(bucket, self.endpoint_url)
            if not status or status >= 500 or status == 429 or code in _RETRY_CODES:
                delays = delays or self.retry.delays()
                delay = next(delays, None)
                if delay is not None:
                    log.info("%s %s: %s; retrying in %.2f s", method, key, status or failure, delay)
                    await asyncio.sleep(delay)
                    continue
                if not status:
                    check = check_unreachable(self.endpoint_url, self.proxy, "endpoint_url")
                    raise ConnectionError(  # obstore's words on a line of their own
                        f"{method} minio://{bucket}/{shorten(key)} at {self.endpoint_url} failed "
                        f"after {self.retry.attempts} attempts: {check}\n{_first_line(failure)}"
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
        """Whether the server refuses ``creds`` as expired or unknown (a listing signed with
        exactly these): SeaweedFS answers AccessDenied, not InvalidAccessKeyId, to a request
        whose session ends while it is being checked."""
        if creds is None:
            return False
        code = await _list_code(self.store(bucket, creds))
        if code != "AccessDenied" or not self.provider.can_refresh:
            return code in EXPIRED_CODES
        # Ceph RGW answers AccessDenied to every session it no longer accepts (expired, role
        # gone): when a session exchanged anew is let in, the old one was the problem.
        new = await self.provider.arefresh_after_failure(creds)
        return new is not creds and await _list_code(self.store(bucket, new)) is None

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

    def stat_object(self, bucket: str, key: str) -> Awaitable[tuple[int, str] | None]:
        """The object's size and ETag, None if it is missing."""

        async def send(store: S3Store) -> tuple[int, str]:
            meta = await obstore.head_async(store, key)
            return int(meta["size"]), meta.get("e_tag") or ""

        return self.call("HEAD", bucket, key, send, missing=_missing_read)

    async def get_part(
        self, bucket: str, key: str, start: int, end: int, etag: str
    ) -> memoryview | None:
        """Bytes ``start``-``end`` of the object (fewer where it ends sooner), None when it is
        missing; ``S3Error`` with status 412 when it no longer has ``etag`` (compared here:
        not all servers take ``If-Match``)."""

        async def send(store: S3Store) -> tuple[Any, str]:
            result = await obstore.get_async(store, key, options={"range": (start, end)})
            return await result.bytes_async(), result.meta.get("e_tag") or ""

        found = await self.call("GET", bucket, key, send, missing=_missing_read)
        if found is None:
            return None
        data, tag = found
        check_version(f"minio://{bucket}/{key}", etag, tag, S3Error)
        return memoryview(data)

    async def _denied_but_missing(self, bucket: str, key: str) -> bool:
        """Whether a refused read was of a key a listing with the same credentials does not
        show: without the right to list the whole bucket, S3 (AWS, Ceph RGW) answers 403 for a
        missing key, as a public prefix's readers meet when zarr probes for metadata files."""
        try:
            async for name, _ in self.list_objects(bucket, key, delimiter="/"):
                if name == key:
                    return False
        except PermissionError:
            return False
        return True

    async def put_object(self, bucket: str, key: str, data: bytes | memoryview) -> None:
        """Store ``data`` under ``key`` (one PUT up to ``SINGLE_PUT_MAX``, else multipart); the
        server checks its SHA-256 and stores nothing corrupted on the way (``BadDigest``)."""

        async def send(store: S3Store) -> None:
            multipart = len(data) > SINGLE_PUT_MAX
            await obstore.put_async(store, key, data, use_multipart=multipart, chunk_size=PART_SIZE)

        await self.call("PUT", bucket, key, send)

    async def put_object_if_absent(self, bucket: str, key: str, data: bytes | memoryview) -> bool:
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
        """(key, is_prefix) under ``prefix``, page by page; obstore lists whole path segments:
        this lists the folder and keeps what starts with ``prefix``."""
        folder = prefix.rpartition("/")[0] or None
        if delimiter:
            result = await self.call(
                "GET", bucket, "", lambda store: obstore.list_with_delimiter_async(store, folder)
            )
            for item in result["objects"]:
                if item["path"].startswith(prefix):
                    yield item["path"], False
            for sub in result["common_prefixes"]:
                if sub.startswith(prefix):
                    yield sub + "/", True
            return

        async def start(store: S3Store) -> Any:  # in call: a bad CA file reads as a TLS error
            return aiter(obstore.list(store, folder))  # pages come one request each

        stream = await self.call("GET", bucket, "", start)

        async def next_page(_: S3Store) -> Any:
            return await anext(stream, None)

        while (page := await self.call("GET", bucket, "", next_page)) is not None:
            for item in page:
                if item["path"].startswith(prefix):
                    yield item["path"], False


def _missing_read(status: int, code: str) -> Any:
    """A read of a missing key: None; of a range past the end (416): b"" (HEAD has none)."""
    return None if status == 404 else b""


def _first_line(error: Exception) -> str:
    """What went wrong, without obstore's request description ("Error performing GET ... -")."""
    return str(error).split("\n", 1)[0].rpartition(" - ")[2][:120]
