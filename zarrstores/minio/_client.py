"""A lean async S3 client: SigV4 over a lean HTTP/1.1 pool, for the zarr store's many small
requests.

Everything goes through ``S3Client.request``: signing, refresh-and-retry of expired session
credentials, backoff on 5xx / resets / timeouts, and the one translation of S3 errors into
Python's exceptions (``raise_for_status``). Why not botocore: with small objects the client's
CPU per request is the throughput (on 2 cores shared with the server, aiobotocore/s3fs reach a
fifth to a third of what a bare HTTP client does); signing here costs ~11 us a request.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import time
import weakref
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote_plus, urlsplit
from xml.sax.saxutils import escape

from .._http import HTTPConnectionError, HTTPPool, TLSError, call_on_loop
from .._retry import DEFAULT_RETRY, RetryPolicy
from ..auth import AnonymousS3, S3CredentialProvider, S3Credentials
from ..auth._secret import redact

log = logging.getLogger("zarrstores.minio")

DEFAULT_REGION = "us-east-1"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# What servers answer to session keys they no longer accept: MinIO says ExpiredToken,
# SeaweedFS InvalidAccessKeyId, others InvalidToken.
EXPIRED_CODES = frozenset(
    {"ExpiredToken", "ExpiredTokenException", "InvalidAccessKeyId", "InvalidToken"}
)
_RETRY_CODES = frozenset({"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable"})
_TRANSIENT = (HTTPConnectionError, TimeoutError)
# Refreshes per request before a rejection counts as final (a request can race a refresh).
_MAX_REFRESHES = 3
_SUBRESOURCES = ("policy", "delete", "location", "versioning", "acl", "tagging", "uploads")
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


def uri_encode(text: str, *, keep_slash: bool) -> str:
    """S3's SigV4 URI encoding: UTF-8, every byte but ``A-Za-z0-9-._~`` percent-encoded."""
    return quote(text, safe="/~" if keep_slash else "~")


def missing_bucket(bucket: str, endpoint_url: str) -> FileNotFoundError:
    """The error for a bucket that does not exist, with how to create it."""
    return FileNotFoundError(
        f"bucket {bucket!r} does not exist at {endpoint_url}: create it first "
        f"(`mc mb ALIAS/{bucket}`, or fsspec.filesystem('minio').mkdir({bucket!r}))"
    )


@dataclass
class Response:
    """Status, headers (names in lower case) and body of one answered request."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def error_code(self) -> tuple[str, str]:
        """The S3 error ``Code`` and ``Message`` of the body (empty for HEAD)."""
        if not self.body:
            return "", ""
        try:
            root = ET.fromstring(self.body)
        except ET.ParseError:
            return "", ""
        return _text(root, "Code"), _text(root, "Message")


def _action(method: str, key: str, query: Mapping[str, str] | None) -> str:
    """What a request does, in words for messages: "reading", "listing", "writing"..."""
    sub = next((q for q in (query or {}) if q in _SUBRESOURCES), None)
    if sub == "delete" or (method == "DELETE" and not sub):
        return "deleting"
    if sub:
        return f"{'reading' if method == 'GET' else 'changing'} the bucket {sub}"
    if method in ("GET", "HEAD"):
        return "reading" if key else "listing"
    return "writing" if method == "PUT" else "changing"


def _text(el: ET.Element, name: str) -> str:
    for child in el.iter():
        if child.tag.rsplit("}", 1)[-1] == name:
            return (child.text or "").strip()
    return ""


class S3Client:
    """Path-style S3 requests to one endpoint with credentials from ``provider``.

    Bound to the event loop it is first used on (its connections are); make one per loop.
    """

    def __init__(
        self,
        endpoint_url: str,
        provider: S3CredentialProvider,
        *,
        region: str = DEFAULT_REGION,
        retry: RetryPolicy = DEFAULT_RETRY,
        verify: bool | str = True,
        max_connections: int = 64,
    ) -> None:
        self.endpoint_url = endpoint_url.rstrip("/")
        self.provider = provider
        self.region = region
        self.retry = retry
        self.verify = verify
        self.max_connections = max_connections
        parts = urlsplit(self.endpoint_url)
        self._host, self._base_path = parts.netloc, parts.path
        self._pool: HTTPPool | None = None
        self._keys: dict[tuple[str, str], bytes] = {}

    # -- transport ------------------------------------------------------------------------------
    def _get_pool(self) -> HTTPPool:
        if self._pool is None:  # close() forgets it
            self._pool = HTTPPool.for_url(
                self.endpoint_url,
                verify=self.verify,
                limit=self.max_connections,
                timeout=self.retry.timeout,
                connect_timeout=min(10.0, self.retry.timeout),
            )
            # Stores are dropped and loops closed without anyone awaiting close(): the
            # finalizer closes the sockets then, or at exit.
            weakref.finalize(self, call_on_loop, asyncio.get_running_loop(), self._pool.close_now)
        return self._pool

    async def close(self) -> None:
        """Close the connections (call on the loop the client was used on)."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    # -- signing --------------------------------------------------------------------------------
    def _signing_key(self, secret: str, day: str) -> bytes:
        key = self._keys.get((secret, day))
        if key is None:
            key = ("AWS4" + secret).encode()
            for part in (day, self.region, "s3", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._keys = {(secret, day): key}  # one at a time: keys rotate, days pass
        return key

    def _sign(
        self,
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        payload_hash: str,
        creds: S3Credentials,
    ) -> None:
        now = time.gmtime()
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", now)
        day = amz_date[:8]
        headers["x-amz-date"] = amz_date
        headers["x-amz-content-sha256"] = payload_hash
        if creds.session_token:
            headers["x-amz-security-token"] = creds.session_token.reveal()
        names = sorted(headers)
        canonical = "\n".join(
            (
                method,
                path,
                query,
                "".join(f"{n}:{headers[n].strip()}\n" for n in names),
                ";".join(names),
                payload_hash,
            )
        )
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(
            ("AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest())
        )
        key = self._signing_key(creds.secret_key.reveal(), day)
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={creds.access_key}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature}"
        )

    # -- the one request function ---------------------------------------------------------------
    async def request(
        self,
        method: str,
        bucket: str,
        key: str = "",
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        ok: tuple[int, ...] = (),
        payload_hash: str | None = None,
    ) -> Response:
        """Send a signed request, retrying transient failures and refreshing expired session
        credentials. A status that is neither 2xx nor in ``ok`` raises (``raise_for_status``);
        ``ConnectionError`` once the retries are spent; ``AuthError`` from the auth core."""
        path = self._base_path + uri_encode(
            f"/{bucket}/{key}" if key else f"/{bucket}", keep_slash=True
        )
        query_string = "&".join(
            sorted(
                f"{uri_encode(k, keep_slash=False)}={uri_encode(v, keep_slash=False)}"
                for k, v in (query or {}).items()
            )
        )
        headers = {k.lower(): v for k, v in (headers or {}).items()}
        payload_hash = payload_hash or self._payload_hash(body)
        delays = self.retry.delays()
        refreshes = 0
        while True:
            creds = await self.provider.aget()
            try:
                response = await self._send(
                    method, path, query_string, headers, body, payload_hash, creds
                )
            except TLSError as e:
                # Not worth a retry: the certificate will be the same next time.
                raise ConnectionError(
                    f"TLS connection to {self.endpoint_url} failed ({e}): for a "
                    "private CA pass verify='/path/to/ca-bundle.pem' (verify=False turns "
                    "checking off, not recommended)"
                ) from None
            except _TRANSIENT as e:
                delay = next(delays, None)
                if delay is None:
                    raise ConnectionError(
                        f"{method} {self._where(bucket, key, query)} failed after "
                        f"{self.retry.attempts} attempts: {type(e).__name__} {e}: check "
                        "endpoint_url and that the server is up"
                    ) from None
                log.info("%s %s: %s; retrying in %.2f s", method, key, type(e).__name__, delay)
                await asyncio.sleep(delay)
                continue
            if response.status < 300 or response.status in ok:
                return response
            code, _ = response.error_code()
            if method == "HEAD" and response.status == 403:
                # A HEAD error has no body: ask again with a one-byte GET to learn why.
                with contextlib.suppress(*_TRANSIENT):
                    probe = await self._send(
                        "GET", path, "", {"range": "bytes=0-0"}, b"", EMPTY_SHA256, creds
                    )
                    code = probe.error_code()[0]
            refreshable = creds is not None and self.provider.can_refresh
            if code == "AccessDenied" and refreshable and await self.rejects_as_expired(creds):
                code = "ExpiredToken"  # a session that ended while the request was checked
            # SeaweedFS refuses writes into a bucket that does not exist without saying why.
            missing = code == "AccessDenied" and method == "PUT" and bool(key)
            if missing and await self._bucket_missing(bucket, creds):
                raise missing_bucket(bucket, self.endpoint_url)
            if code in EXPIRED_CODES and refreshable and refreshes < _MAX_REFRESHES:
                refreshes += 1
                log.info("%s rejected session credentials (%s); refreshing", self._host, code)
                await self.provider.arefresh_after_failure(creds)  # type: ignore[arg-type]
                continue
            if response.status >= 500 or response.status == 429 or code in _RETRY_CODES:
                delay = next(delays, None)
                if delay is not None:
                    log.info("%s %s: %s %s; retrying", method, key, response.status, code)
                    await asyncio.sleep(delay)
                    continue
            self.raise_for_status(response, method, bucket, key, query, creds, code=code)

    async def _bucket_missing(self, bucket: str, creds: S3Credentials | None) -> bool:
        path = self._base_path + uri_encode(f"/{bucket}", keep_slash=True)
        try:
            r = await self._send("HEAD", path, "", {}, b"", EMPTY_SHA256, creds)
        except _TRANSIENT:
            return False
        return r.status == 404

    async def rejects_as_expired(self, creds: S3Credentials | None) -> bool:
        """Whether the server refuses ``creds`` as expired or unknown (asked with a signed
        ``GET /``). SeaweedFS answers AccessDenied, not InvalidAccessKeyId, to a request whose
        session ends while it is being checked: this tells the two apart. Refreshable
        credentials refused there with AccessDenied are exchanged anew to tell."""
        if creds is None:
            return False
        try:
            r = await self._send("GET", self._base_path + "/", "", {}, b"", EMPTY_SHA256, creds)
        except _TRANSIENT:
            return False
        code = r.error_code()[0]
        if code != "AccessDenied" or not self.provider.can_refresh:
            return code in EXPIRED_CODES
        # Ceph RGW answers AccessDenied to every session it no longer accepts (expired, role
        # gone): when a session exchanged anew is let in, the old one was the problem.
        fresh = await self.provider.arefresh_after_failure(creds)
        if fresh is creds:
            return False
        try:
            r = await self._send("GET", self._base_path + "/", "", {}, b"", EMPTY_SHA256, fresh)
        except _TRANSIENT:
            return False
        return r.status < 300

    @staticmethod
    def _payload_hash(body: bytes) -> str:
        # Signed payloads: UNSIGNED-PAYLOAD is not accepted everywhere, and hashing 64 KiB
        # costs ~35 us, little next to a request.
        return hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256

    async def _send(
        self,
        method: str,
        path: str,
        query_string: str,
        headers: dict[str, str],
        body: bytes,
        payload_hash: str,
        creds: S3Credentials | None,
    ) -> Response:
        sent = {"host": self._host, **headers}
        if creds is not None:
            self._sign(method, path, query_string, sent, payload_hash, creds)
        target = f"{path}?{query_string}" if query_string else path  # encoded as signed
        r = await self._get_pool().request(method, target, sent, body)
        return Response(r.status, r.headers, r.body)

    def _where(self, bucket: str, key: str, query: Mapping[str, str] | None) -> str:
        sub = next((q for q in (query or {}) if q in _SUBRESOURCES and q != "delete"), None)
        if key:
            return f"minio://{bucket}/{key} at {self.endpoint_url}"
        if sub:
            return f"the {sub} of bucket {bucket!r} at {self.endpoint_url}"
        return f"bucket {bucket!r} at {self.endpoint_url}"

    def raise_for_status(
        self,
        response: Response,
        method: str,
        bucket: str,
        key: str,
        query: Mapping[str, str] | None,
        creds: S3Credentials | None,
        *,
        code: str = "",
    ) -> None:
        """Raise the Python exception for an S3 error answer (the one place that translates):
        ``FileNotFoundError`` for a missing bucket or key, ``PermissionError`` for a refusal,
        ``OSError`` otherwise. No secret in any message."""
        server_code, message = response.error_code()
        code = code or server_code or str(response.status)
        if creds is not None:
            message = redact(message, creds.secret_key, creds.session_token)
        where = self._where(bucket, key, query)
        detail = f"{code}: {message}" if message else code
        if code in _HINTS:
            detail += f" ({_HINTS[code]})"
        if code == "NoSuchBucket" or (response.status == 404 and not key and not query):
            raise missing_bucket(bucket, self.endpoint_url)
        if response.status == 404:
            raise FileNotFoundError(f"{where} does not exist ({detail})")
        if response.status in (401, 403):
            action = _action(method, key, query)
            who = self.provider.describe()
            if isinstance(self.provider, AnonymousS3):
                hint = "Anonymous access is not allowed here: the data is not public."
            elif code in EXPIRED_CODES and not self.provider.can_refresh:
                hint = (
                    f"The server does not accept these credentials ({who}): expired or unknown;"
                    " check key= (AWS_ACCESS_KEY_ID) or get new keys."
                )
            elif code in EXPIRED_CODES:
                hint = f"The server does not accept these credentials ({who}): expired or unknown."
            elif action in ("writing", "deleting"):
                hint = f"These credentials ({who}) do not allow {action} here: read-only access?"
            else:
                hint = f"These credentials ({who}) do not allow {action} here."
            static = not (self.provider.can_refresh or isinstance(self.provider, AnonymousS3))
            if code == "AccessDenied" and static:
                hint += " Or they are wrong: Ceph RGW with STS says AccessDenied to those too."
            raise PermissionError(f"{method} {where} denied ({detail}). {hint}")
        raise OSError(f"{method} {where} failed: HTTP {response.status} {detail}")

    # -- operations -----------------------------------------------------------------------------
    async def get_object(
        self, bucket: str, key: str, byte_range: tuple[int, int | None] | None = None
    ) -> bytes | None:
        """The object's bytes (``byte_range``: start, exclusive end), None if it is missing."""
        headers = {}
        if byte_range is not None:
            start, end = byte_range
            if start < 0:
                headers["range"] = f"bytes={start}"
            elif end is None:
                headers["range"] = f"bytes={start}-"
            elif end <= start:
                return b"" if await self.head_object(bucket, key) is not None else None
            else:
                headers["range"] = f"bytes={start}-{end - 1}"
        try:
            r = await self.request("GET", bucket, key, headers=headers, ok=(404, 416))
        except PermissionError:
            if await self._denied_but_missing(bucket, key):
                return None
            raise
        if r.status == 404:
            if r.error_code()[0] == "NoSuchBucket":
                self.raise_for_status(r, "GET", bucket, key, None, None)
            return None
        return b"" if r.status == 416 else r.body

    async def head_object(self, bucket: str, key: str) -> int | None:
        """The object's size, None if it is missing."""
        try:
            r = await self.request("HEAD", bucket, key, ok=(404,))
        except PermissionError:
            if await self._denied_but_missing(bucket, key):
                return None
            raise
        return None if r.status == 404 else int(r.headers.get("content-length", 0))

    async def _denied_but_missing(self, bucket: str, key: str) -> bool:
        """Whether a refused read was of a key that does not exist, as a listing with the same
        credentials shows. Without the right to list the whole bucket, S3 (AWS, Ceph RGW)
        answers 403, not 404, for a missing key: a public prefix's readers meet that when
        zarr probes for metadata files. A listing refused too leaves the refusal standing."""
        query = {"list-type": "2", "prefix": key, "max-keys": "1", "encoding-type": "url"}
        try:
            r = await self.request("GET", bucket, query=query)
        except PermissionError:
            return False
        root = ET.fromstring(r.body)
        decode = unquote_plus if _text(root, "EncodingType") == "url" else str
        listed = [decode(_text(el, "Key")) for el in root if el.tag.endswith("Contents")]
        return key not in listed

    async def put_object(self, bucket: str, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``; the server checks it against its SHA-256 and stores
        nothing when it arrived corrupted (``BadDigest``)."""
        # One hash, sent twice: signed (x-amz-content-sha256, which MinIO and AWS check) and
        # as the object's checksum (x-amz-checksum-sha256, which SeaweedFS checks instead).
        digest = hashlib.sha256(data).digest()
        await self.request(
            "PUT",
            bucket,
            key,
            body=data,
            headers={"x-amz-checksum-sha256": base64.b64encode(digest).decode()},
            payload_hash=digest.hex(),
        )

    async def delete_objects(self, bucket: str, keys: list[str]) -> None:
        """Delete ``keys`` (missing ones are no error), 1,000 per request."""
        if len(keys) == 1:
            await self.request("DELETE", bucket, keys[0], ok=(404,))
            return
        for i in range(0, len(keys), 1000):
            batch = keys[i : i + 1000]
            objects = "".join(f"<Object><Key>{escape(k)}</Key></Object>" for k in batch)
            body = f"<Delete><Quiet>true</Quiet>{objects}</Delete>".encode()
            md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
            r = await self.request(
                "POST", bucket, query={"delete": ""}, body=body, headers={"content-md5": md5}
            )
            # Quiet mode lists only the keys that could not be deleted, each with its error.
            for error in ET.fromstring(r.body):
                code = _text(error, "Code")
                if error.tag.rsplit("}", 1)[-1] == "Error" and code != "NoSuchKey":
                    status = 403 if code == "AccessDenied" else 500
                    failed = Response(status, {}, ET.tostring(error))
                    key = _text(error, "Key")
                    self.raise_for_status(failed, "DELETE", bucket, key, None, None, code=code)

    async def list_objects(
        self, bucket: str, prefix: str = "", delimiter: str | None = None
    ) -> AsyncIterator[tuple[str, bool]]:
        """(key, is_prefix) under ``prefix``, page by page (ListObjectsV2)."""
        query = {"list-type": "2", "prefix": prefix, "encoding-type": "url"}
        if delimiter:
            query["delimiter"] = delimiter
        while True:
            r = await self.request("GET", bucket, query=query)
            root = ET.fromstring(r.body)
            # encoding-type=url is form encoding (space as "+"), as AWS and SeaweedFS do it.
            decode = unquote_plus if _text(root, "EncodingType") == "url" else str
            for el in root:
                tag = el.tag.rsplit("}", 1)[-1]
                if tag == "Contents":
                    yield decode(_text(el, "Key")), False
                elif tag == "CommonPrefixes":
                    yield decode(_text(el, "Prefix")), True
            token = _text(root, "NextContinuationToken")
            if _text(root, "IsTruncated") != "true" or not token:
                return
            query["continuation-token"] = token

    async def bucket_request(
        self,
        method: str,
        bucket: str,
        subresource: str,
        body: bytes = b"",
        ok: tuple[int, ...] = (),
    ) -> Response:
        """A request on a bucket's sub-resource (``?policy``, ``?location``...)."""
        return await self.request(method, bucket, query={subresource: ""}, body=body, ok=ok)
