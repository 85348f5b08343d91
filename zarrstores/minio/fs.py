"""``minio://bucket/path``: s3fs with the auth core's credentials and S3-compatible defaults."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import inspect
import logging
import os
import re
import weakref
from collections.abc import Callable
from typing import Any

import botocore.exceptions
import s3fs
from botocore.exceptions import ClientError
from fsspec.callbacks import DEFAULT_CALLBACK, Callback

from .._files import (
    DOWNLOAD_PART,
    SPOOL_OPTIONS,
    CachedByIdentity,
    download,
    open_for_upload,
    read_options,
)
from .._names import bucket_name_problem, no_container_error, s3_key_problem
from .._transport import (
    _close_now,
    absolute_range,
    ca_location,
    call_on_loop,
    proxy_for,
    tls_error_text,
)
from ..auth import AnonymousS3, ConfigurationError, S3CredentialProvider, s3_credentials
from ..auth._options import unknown_option_text
from ..auth.adapters import aiobotocore_session
from ..auth.tokens import TokenSource
from ._client import (
    _MAX_REFRESHES,
    DEFAULT_CONCURRENCY,
    DEFAULT_REGION,
    EXPIRED_CODES,
    S3Client,
    S3Error,
    s3_error,
)

__all__ = ["MinioFileSystem"]

_GET_PART = DOWNLOAD_PART  # get_file's parts (a name the tests set)

# What S3-compatible servers need from botocore: path-style URLs (no bucket DNS names),
# SigV4 also for presigned URLs with session tokens, and no CRC checksums that MinIO and
# SeaweedFS versions may reject.
S3_COMPATIBLE_CONFIG: dict[str, Any] = {
    "signature_version": "s3v4",
    "s3": {"addressing_style": "path"},
    "request_checksum_calculation": "when_required",
    "response_checksum_validation": "when_required",
}


# botocore logs each signed request at DEBUG, session token included (the canonical request,
# the headers); this keeps the token out of those records.
_SESSION_TOKEN = re.compile(r"(?i)(x-amz-security-token['\"]?\s*[:=]\s*b?['\"]?)[^'\"\s&,}>]+")


class _RedactSessionToken(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _SESSION_TOKEN.sub(r"\1***", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


for _name in ("botocore.auth", "botocore.endpoint"):
    logging.getLogger(_name).addFilter(_RedactSessionToken())

# Reads from this size on hand asynchronous callers (zarr's FsspecStore) obstore's buffer.
_VIEW_MIN = 4 << 20


class ObjectChangedError(s3fs.utils.FileExpired):
    """An object open for reading was replaced (s3fs's ``FileExpired``, which s3fs users catch,
    with a message that says what to do)."""

    def __init__(self, url: str, e_tag: str = "") -> None:
        OSError.__init__(self, f"{url} was replaced after it was opened: open it again")
        self.url, self.e_tag = url, e_tag

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.url, self.e_tag)


# A HEAD refused with credentials that a later request could use: retry it.
_ACCEPTED_NOW = "CredentialsRefreshed"
_REFUSALS = frozenset({"AccessDenied", "SignatureDoesNotMatch", "AllAccessDisabled", "403"})


def _close_client(loop: asyncio.AbstractEventLoop, client: Any) -> None:
    """Close a dropped aiobotocore client's sessions, on their loop's thread if it still runs
    (the callback holds a session until it is closed: no "unclosed session" warning)."""
    http = getattr(getattr(client, "_endpoint", None), "http_session", None)
    for session in list((getattr(http, "_sessions", None) or {}).values()):
        if not session.closed:
            call_on_loop(loop, _close_now, session)


# What s3fs and fsspec take besides our own options (and the upload spool's, in kwargs).
_S3FS_OPTIONS = frozenset(inspect.signature(s3fs.S3FileSystem.__init__).parameters) - {
    "self",
    "kwargs",
} | {"batch_size", "use_listings_cache", "listings_expiry_time", "max_paths", *SPOOL_OPTIONS}


class MinioFileSystem(s3fs.S3FileSystem, metaclass=CachedByIdentity):
    """fsspec filesystem for ``minio://<bucket>/<path>`` on MinIO or any S3 server with STS.

    The endpoint is ``endpoint_url``, else ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, the
    ``mc`` alias' or the AWS profile's. Credentials, by default, come from the OIDC ``token``
    (value, path, callable or ``TokenSource``; else ``token_file`` or discovery) via STS,
    refreshed before expiry and after the server rejects them (``ExpiredToken``,
    ``InvalidAccessKeyId``, ``InvalidToken``: the request is retried). Else ``key``/``secret``
    (``session_token``), ``mc_alias``, an AWS ``profile`` (``~/.aws/credentials``), ``anon=True``
    or a ``credentials`` provider. ``token`` is the OIDC token, except beside ``key``/``secret``,
    where it is the session token, as in s3fs. s3fs's ``client_kwargs={"endpoint_url": ...}``
    names the endpoint too. ``max_concurrency``: requests in flight for whole-object reads and
    writes (zarr's chunks; see docs/performance.md), and s3fs's parts in flight per file. Other
    keywords go to ``s3fs.S3FileSystem``; a name neither takes is refused.

    Errors: a missing bucket or key raises ``FileNotFoundError``; a refusal
    ``PermissionError`` naming the operation and bucket, never a secret.
    """

    protocol = ("minio",)
    identity_options = ("credentials", "token")  # providers, token sources, callables

    def __init__(
        self,
        *,
        endpoint_url: str | None = None,
        token: str | os.PathLike[str] | TokenSource | Callable[[], str] | None = None,
        token_file: str | os.PathLike[str] | None = None,
        anon: bool = False,
        key: str | None = None,
        secret: str | None = None,
        session_token: str | None = None,
        mc_alias: str | None = None,
        profile: str | None = None,
        credentials: S3CredentialProvider | None = None,
        role_arn: str | None = None,
        duration: int = 3600,
        verify: bool | str = True,
        proxy: str | None = None,
        region: str = DEFAULT_REGION,
        max_concurrency: int | None = None,
        client_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("credentials_id", None)  # only cache keys, see CachedByIdentity
        kwargs.pop("token_id", None)
        if unknown := sorted(set(kwargs) - _S3FS_OPTIONS):  # s3fs would drop a misspelt one
            ours = inspect.signature(MinioFileSystem.__init__).parameters
            known = [*_S3FS_OPTIONS, *(p for p in ours if p not in ("self", "kwargs"))]
            raise ConfigurationError(unknown_option_text("minio://", unknown[0], known))
        if isinstance(token, os.PathLike):
            token, token_file = None, token
        # As s3fs users write them: the endpoint in client_kwargs, and token beside key/secret
        # as the session token.
        if endpoint_url is None and client_kwargs:
            endpoint_url = client_kwargs.get("endpoint_url")
        if key and secret and isinstance(token, str) and session_token is None:
            session_token, token = token, None
        provider, endpoint = s3_credentials(
            endpoint_url,
            credentials=credentials,
            anon=anon,
            key=key,
            secret=secret,
            session_token=session_token,
            mc_alias_name=mc_alias,
            profile=profile,
            token=token,
            token_file=token_file,
            role_arn=role_arn,
            duration=duration,
            verify=verify,
            proxy=proxy,
        )
        self.credentials = provider
        """Where the S3 credentials come from (``credentials.exchanges`` counts STS calls)."""
        client_kwargs = {"endpoint_url": endpoint, "region_name": region, **(client_kwargs or {})}
        ca = ca_location(verify)
        if ca is not True:
            client_kwargs["verify"] = ca
        config_kwargs = {**S3_COMPATIBLE_CONFIG, **(config_kwargs or {})}
        if chosen := proxy_for(endpoint, proxy):
            config_kwargs.setdefault("proxies", {"http": chosen, "https": chosen})
        anonymous = isinstance(provider, AnonymousS3)
        if max_concurrency is not None:
            kwargs["max_concurrency"] = max_concurrency  # s3fs: multipart parts per file
        super().__init__(
            anon=anonymous,
            session=None if anonymous else aiobotocore_session(provider, every_signing=True),
            client_kwargs=client_kwargs,
            config_kwargs=config_kwargs,
            **kwargs,
        )
        # s3fs keeps this attribute unset; the endpoint belongs to the instance (and its token).
        self.endpoint_url = endpoint
        self.proxy = proxy
        self._server: str | None = None  # the Server header, once asked (_keeps_emptied_folders)
        # Whole-object reads and writes (zarr's chunk I/O): a tenth of botocore's CPU per request.
        self._objects = S3Client(
            endpoint,
            provider,
            region=region,
            verify=verify,
            proxy=proxy,
            max_concurrency=max_concurrency or DEFAULT_CONCURRENCY,
        )

    async def set_session(self, refresh: bool = False, kwargs: dict[str, Any] | None = None) -> Any:
        before = self._s3
        s3 = await super().set_session(refresh, kwargs or {})
        if self.asynchronous and s3 is not before:
            # s3fs leaves asynchronous instances' connections open (zarr makes those): close
            # them when this instance goes, on the loop that opened them.
            weakref.finalize(self, _close_client, asyncio.get_running_loop(), s3)
        return s3

    async def _call_s3(self, method: str, *akwarglist: Any, **kwargs: Any) -> Any:
        body = kwargs.get("Body")
        # The server checks the body against a checksum and stores nothing if it arrived
        # corrupted (servers need not check the signed payload hash; SeaweedFS does not).
        if method == "put_object" and isinstance(body, bytes | bytearray):
            sha256 = hashlib.sha256(body).digest()
            kwargs.setdefault("ChecksumSHA256", base64.b64encode(sha256).decode())
        elif method == "upload_part" and isinstance(body, bytes | bytearray):
            # A part's SHA-256 needs an upload created with one; MD5 needs nothing.
            md5 = hashlib.md5(body, usedforsecurity=False).digest()
            kwargs.setdefault("ContentMD5", base64.b64encode(md5).decode())
        if method == "create_bucket":
            # s3fs sends the region as LocationConstraint; a server whose zone is named
            # otherwise (Ceph RGW: "default") refuses the default one, as AWS does for it.
            config = kwargs.get("CreateBucketConfiguration") or {}
            if config.get("LocationConstraint") == DEFAULT_REGION:
                kwargs.pop("CreateBucketConfiguration")
        for attempt in range(_MAX_REFRESHES + 1):
            used = await self.credentials.aget()
            try:
                return await super()._call_s3(method, *akwarglist, **kwargs)
            except botocore.exceptions.SSLError:
                raise ConnectionError(tls_error_text(self.endpoint_url)) from None
            except botocore.exceptions.ParamValidationError as e:  # refused before sending
                problem = bucket_name_problem(kwargs.get("Bucket") or "")
                raise ConfigurationError(problem or " ".join(str(e).split())) from None
            except (OSError, ClientError) as e:
                error = e if isinstance(e, ClientError) else e.__cause__
                if not isinstance(error, ClientError):
                    raise
                code = error.response.get("Error", {}).get("Code", "")
                if code == "403" and method == "head_object":
                    code = await self._why_forbidden(kwargs)  # HEAD errors have no body
                refreshable = used is not None and self.credentials.can_refresh
                bucket = kwargs.get("Bucket", "")
                if (
                    code == "AccessDenied"
                    and refreshable
                    and await self._objects.rejects(bucket, used)
                ):
                    code = "ExpiredToken"  # a session that ended while the request was checked
                refresh = code in EXPIRED_CODES or code == _ACCEPTED_NOW
                if refresh and refreshable and attempt < _MAX_REFRESHES:
                    await self.credentials.arefresh_after_failure(used)
                    continue
                raise self._translate(e, error, code, method, kwargs, used) from None
        raise AssertionError("unreachable")

    # -- zarr's chunk I/O: whole objects through obstore ----------------------------------------
    @staticmethod
    def _obstore_key(key: str) -> bool:
        """Whether obstore sends ``key`` as it is; others (a folder marker "dir/", control
        characters) go through s3fs, as they would with s3fs alone."""
        return bool(key) and s3_key_problem(key) is None

    def _plain(self) -> bool:
        """Whether whole-object I/O may skip botocore (no versions, requester-pays, extras)."""
        return not (self.version_aware or self.req_kw or self.s3_additional_kwargs)

    async def _cat_file(
        self,
        path: str,
        version_id: str | None = None,
        start: int | None = None,
        end: int | None = None,
        **kwargs: Any,
    ) -> bytes | memoryview:
        """The object's bytes (of ``start``-``end``, negative: from the end) in one GET through
        obstore (s3fs sends a HEAD first, through botocore). Asynchronous instances (zarr's
        ``FsspecStore``) get reads from 4 MiB on as a read-only ``memoryview`` of obstore's
        buffer, which zarr wraps: ``bytes`` would copy a whole shard (CPU, twice the memory)."""
        bucket, key, vers = self.split_path(path)
        client = self._objects
        if not self._plain() or version_id or vers or kwargs or not self._obstore_key(key):
            return await super()._cat_file(path, version_id, start, end, **kwargs)
        byte_range = None
        if start is not None or end is not None:
            first, last = start or 0, end
            if last is not None and (last < 0 or first < 0):
                size = await client.head_object(bucket, key)  # counted from the end
                if size is None:
                    raise self._missing(bucket, key)
                first, last = absolute_range(first, last, size)
            byte_range = (first, last)  # (-n, None): the last n bytes
        data = await client.get_object(bucket, key, byte_range, view=True)  # no bucket: raises
        if data is None:
            raise self._missing(bucket, key)
        if isinstance(data, memoryview) and (len(data) < _VIEW_MIN or not self.asynchronous):
            return bytes(data)
        return data

    async def _get_file(
        self,
        rpath: str,
        lpath: str,
        callback: Callback = DEFAULT_CALLBACK,
        version_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        """The object into the local file ``lpath``: ranged GETs of ``chunksize`` (16 MiB),
        ``max_concurrency`` at once, each checked to be of the version the HEAD before them
        found. An object replaced meanwhile is downloaded again, never a mix of two versions
        (s3fs's own resumes and splits a download without such a check)."""
        bucket, key, vers = self.split_path(rpath)
        options = set(kwargs) - {"chunksize", "max_concurrency"}
        if (
            os.path.isdir(lpath)
            or not self._plain()
            or version_id
            or vers
            or options
            or not self._obstore_key(key)
        ):
            return await super()._get_file(rpath, lpath, callback, version_id, **kwargs)
        client = self._objects

        async def stat() -> tuple[int, str]:
            found = await client.stat_object(bucket, key)
            if found is None:
                raise self._missing(bucket, key)
            return found

        async def read(start: int, end: int, etag: str) -> Any:
            return await client.get_part(bucket, key, start, end, etag)

        part = kwargs.get("chunksize") or _GET_PART
        window = max(1, kwargs.get("max_concurrency") or self.max_concurrency)
        url = f"minio://{bucket}/{key}"
        await download(lpath, url, stat, read, S3Error, part=part, window=window, callback=callback)

    async def _pipe_file(
        self,
        path: str,
        data: bytes,
        chunksize: int | None = None,
        max_concurrency: int | None = None,
        mode: str = "overwrite",
        **kwargs: Any,
    ) -> Any:
        """Write ``data`` through obstore, as ``MinioStore`` does (multipart above 256 MiB). With
        ``chunksize`` (bytes a part), ``mode="create"`` or s3fs options (versions, extra request
        arguments), s3fs writes it: in parts of ``chunksize`` (default 50 MiB) from twice that."""
        bucket, key, _ = self.split_path(path)
        plain = self._plain() and self._obstore_key(key)
        if not plain or kwargs or mode != "overwrite" or chunksize is not None:
            return await super()._pipe_file(
                path, data, chunksize or 50 * 2**20, max_concurrency, mode=mode, **kwargs
            )
        await self._objects.put_object(bucket, key, bytes(data))
        self.invalidate_cache(path)

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if mode not in ("rb", "ab"):  # seekable, uploaded whole on close (multipart when large)
            return open_for_upload(self, path, mode, kwargs, chunksize=kwargs.get("block_size"))
        return super()._open(path, mode, **(read_options(kwargs) if mode == "rb" else kwargs))

    @staticmethod
    def _get_kwargs_from_urls(urlpath: str) -> dict[str, Any]:
        bucket = MinioFileSystem._strip_protocol(urlpath).partition("/")[0]
        if not bucket:
            raise no_container_error(str(urlpath), "minio", "bucket")
        return s3fs.S3FileSystem._get_kwargs_from_urls(urlpath)

    async def _bulk_delete(self, pathlist: list[str], **kwargs: Any) -> list[str]:
        deleted = await super()._bulk_delete(pathlist, **kwargs)
        if pathlist and await self._keeps_emptied_folders(pathlist[0]):
            # SeaweedFS keeps the folders of deleted keys and lists them (MinIO does not):
            # delete their markers too, deepest first; a folder that is not empty stays.
            bucket = self.split_path(pathlist[0])[0]
            folders = {
                f"{bucket}/{key[:i]}/"
                for key in (self.split_path(p)[1] for p in pathlist)
                for i in [j for j, ch in enumerate(key) if ch == "/"]
            }
            ordered = sorted(folders, key=lambda f: (-f.count("/"), f))
            for i in range(0, len(ordered), 1000):
                await super()._bulk_delete(ordered[i : i + 1000])
        return deleted

    async def _keeps_emptied_folders(self, path: str) -> bool:
        if self._server is None:
            bucket = self.split_path(path)[0]
            response = await self._call_s3("list_objects_v2", Bucket=bucket, MaxKeys=0)
            self._server = response["ResponseMetadata"]["HTTPHeaders"].get("server", "")
        return self._server.startswith("SeaweedFS")

    async def _info(self, path: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            return await super()._info(path, *args, **kwargs)
        except FileNotFoundError as e:
            if e.args != (self._strip_protocol(path),):  # ours, naming what is missing
                raise
            bucket, key, _ = self.split_path(path)  # s3fs's, the bare path: say where
            raise self._missing(bucket, key) from None

    def _missing(self, bucket: str, key: str) -> FileNotFoundError:
        return FileNotFoundError(f"minio://{bucket}/{key} at {self.endpoint_url} does not exist")

    async def _why_forbidden(self, kwargs: dict[str, Any]) -> str:
        """The error code behind a HEAD's bare 403, from a one-byte GET; ``_ACCEPTED_NOW``
        when the GET gets past authorisation (signed with credentials refreshed since)."""
        try:
            response = await super()._call_s3(
                "get_object", Bucket=kwargs.get("Bucket"), Key=kwargs.get("Key"), Range="bytes=0-0"
            )
            response["Body"].close()
        except (OSError, ClientError) as e:
            cause = e if isinstance(e, ClientError) else e.__cause__
            if isinstance(cause, ClientError):
                code = cause.response.get("Error", {}).get("Code", "")
                return code if code in _REFUSALS or code in EXPIRED_CODES else _ACCEPTED_NOW
            raise
        return _ACCEPTED_NOW

    def _translate(
        self,
        e: Exception,
        error: ClientError,
        code: str,
        method: str,
        kwargs: dict[str, Any],
        used: Any,
    ) -> Exception:
        """botocore's error through the one translation of S3 errors (``s3_error``); any
        answer about a bucket that cannot exist comes down to its name (as in ``S3Client``)."""
        problem = kwargs.get("Bucket") and bucket_name_problem(kwargs["Bucket"])
        if problem:
            return ConfigurationError(problem)
        where = f"minio://{kwargs.get('Bucket', '')}/{kwargs.get('Key', '')}"
        if code == "PreconditionFailed" and kwargs.get("IfNoneMatch") == "*":
            return FileExistsError(
                f"{where} at {self.endpoint_url} exists (an exclusive write does not replace it)"
            )
        if code == "PreconditionFailed" and kwargs.get("IfMatch"):  # s3fs's files send it
            return ObjectChangedError(where, kwargs["IfMatch"])
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        if isinstance(e, FileNotFoundError) and status != 404:
            status = 404
        elif isinstance(e, PermissionError) and status not in (401, 403):
            status = 403
        subresource = method.rsplit("_bucket_", 1)[1] if "_bucket_" in method else ""
        return s3_error(
            status,
            code,
            error.response.get("Error", {}).get("Message") or "",  # None for RGW's empty <Message/>
            method=method.split("_", 1)[0].upper() if subresource else method,
            bucket=kwargs.get("Bucket", ""),
            key=kwargs.get("Key", ""),
            endpoint_url=self.endpoint_url,
            provider=self.credentials,
            creds=used,
            subresource=subresource,
        )
