"""The async Swift client behind ``SwiftFileSystem`` and ``SwiftStore``.

``SwiftClient.request`` adds the token, retries transient failures (5xx, 429/498, resets,
timeouts), authenticates again once on 401 and translates errors once: 404 ->
``FileNotFoundError``, 401/403 -> ``PermissionError`` naming container and operation, else
``SwiftError``. One aiohttp session per event loop (``zarrstores._transport``) serves zarr's
loop, fsspec's and dask workers alike; the client pickles without its connections. Redirects
are followed here, not by aiohttp: the token goes only to the origin it was issued for.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import quote, unquote, urlencode

import aiohttp
import numpy as np
from yarl import URL

from .._retry import DEFAULT_RETRY, RetryPolicy
from .._transport import (
    LoopSessions,
    absolute_range,
    check_header_values,
    check_unreachable,
    check_version,
    error_for_status,
    http_range,
    proxy_for,
    slice_whole,
    tls_error_text,
)
from ..auth import (
    AnonymousSwift,
    ConfigurationError,
    SwiftAuth,
    SwiftAuthError,
    SwiftCredentials,
    swift_auth,
)
from ..auth._options import unknown_swift_option
from ..auth._secret import redact
from ..auth.errors import shorten
from ..auth.loading import shared_login
from ._bodies import Progress, ViewBody, md5_hex, read_body
from ._errors import (
    HINTS,
    KINDS,
    SwiftError,
    check_bulk,
)
from ._slo import SloWriter
from ._urls import quote_name

log = logging.getLogger("zarrstores.swift")

DEFAULT_SEGMENT_SIZE = 1 << 30
"""Objects larger than this (1 GiB; Swift's limit is 5 GiB) are written as SLOs."""

# Bulk delete: Swift deletes a request's names two at a time, so smaller requests in parallel
# beat one of 10,000 (~1.7x; 500 names in 16 requests 1.6x faster than in 3 at +20 ms): at
# most _BULK_CHUNK names each, over at least _BULK_SPREAD requests, none under _BULK_MIN.
_BULK_CHUNK = 200
_BULK_SPREAD = 16
_BULK_MIN = 10
_BULK_DELETE_DEFAULT = 10000  # Swift's max_deletes_per_request when /info names no limit
_CAPS_CHECK_MIN = 1 << 20  # only objects above this can exceed a cluster's max_file_size
_VIEW_BODY_MIN = 256 << 10  # bodies from this size on sent as a ViewBody
_MAKE_FIRST_MIN = 1 << 20  # from this size on, a container not known is made before the PUT
_EMPTY_MD5 = hashlib.md5(b"", usedforsecurity=False).hexdigest()
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_ORIGIN_BOUND_HEADERS = frozenset({"x-auth-token", "authorization", "x-service-token"})
_MAX_REDIRECTS = 5
_TRANSIENT = frozenset({408, 429, 498, 500, 502, 503, 504})
_TAGS = re.compile(r"<[^>]+>")


class Reply(NamedTuple):
    status: int
    headers: Mapping[str, str]
    body: bytes | bytearray


@dataclass(frozen=True)
class Capabilities:
    """What the cluster's ``/info`` says (defaults when it is not published)."""

    bulk_delete: int = 0  # max names per bulk-delete request; 0 = no bulk delete
    max_file_size: int | None = None
    max_manifest_segments: int = 1000


CLIENT_OPTIONS = ("segment_size", "max_concurrency", "retry", "proxy")
"""``storage_options`` that configure the client; all others describe the auth."""


def client_from_options(options: Mapping[str, Any]) -> SwiftClient:
    """A client for ``storage_options`` (``ConfigurationError`` for unusable ones)."""
    client_opts = {k: v for k, v in options.items() if k in CLIENT_OPTIONS and v is not None}
    auth_opts = {k: v for k, v in options.items() if k not in CLIENT_OPTIONS}
    if problem := unknown_swift_option(auth_opts, also=CLIENT_OPTIONS):
        raise ConfigurationError(problem)
    auth = swift_auth(**auth_opts)
    if auth_opts.get("auth") is None:  # made from options: the same ones share one login
        auth = shared_login(auth, client_opts.get("proxy"))
    return SwiftClient(auth, **client_opts)


class SwiftClient:
    """Swift object operations for one account (``auth``'s storage URL). ``segment_size``:
    objects above it are written as Static Large Objects; ``max_concurrency``: requests in
    flight per event loop; ``retry``: the backoff policy."""

    def __init__(
        self,
        auth: SwiftAuth,
        *,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        max_concurrency: int = 32,  # chosen at +30 ms round trip: docs/performance.md
        retry: RetryPolicy = DEFAULT_RETRY,
        proxy: str | None = None,
    ) -> None:
        if segment_size < 1:
            raise ValueError(f"segment_size must be positive, got {segment_size}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.auth = auth
        self.segment_size = segment_size
        self.max_concurrency = max_concurrency
        self.retry = retry
        self.proxy = proxy
        """The HTTP(S) proxy of every request (else ``HTTPS_PROXY``... from the environment)."""
        if proxy:
            auth.proxy = proxy  # the auth requests too
        self._sessions = LoopSessions(
            verify=auth.verify, limit=max_concurrency, timeout=retry.timeout
        )
        self._caps: Capabilities | None = None
        # The requests under way that concurrent callers share, by event loop and key.
        self._pending: dict[tuple[asyncio.AbstractEventLoop, str], asyncio.Future[Any]] = {}
        self._checked: SwiftCredentials | None = None  # credentials known to be sendable
        self._containers: set[str] = set()  # containers this client has written into or made

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_pending": {}}

    def __repr__(self) -> str:
        return f"SwiftClient({self.auth.describe()})"

    # -- plumbing ------------------------------------------------------------------------------
    def _shared(self, key: str, make: Callable[[], Awaitable[Any]]) -> Awaitable[Any]:
        """``make()`` run once per event loop while under way: concurrent callers (zarr writing
        several shards at once) share one request."""
        at = (asyncio.get_running_loop(), key)
        if at not in self._pending:
            task = self._pending[at] = asyncio.ensure_future(make())
            task.add_done_callback(functools.partial(_forget, self._pending, at))
        return asyncio.shield(self._pending[at])

    async def close(self) -> None:
        """Close the connections of the running event loop."""
        loop = asyncio.get_running_loop()
        for at in [at for at in self._pending if at[0] is loop]:
            del self._pending[at]  # (in place: each task's callback drops it from this dict)
        await self._sessions.close()

    async def _send(
        self,
        method: str,
        url: URL,
        headers: dict[str, str],
        data: Any,
        array: bool = False,
        progress: Progress | None = None,
    ) -> Reply:
        """One request and its whole answer, following redirects: the token (and any
        Authorization) goes to the origin it was meant for only, and a body is sent again
        only when it can be (bytes, or a function giving a fresh one)."""
        session = self._sessions.get()
        for _ in range(_MAX_REDIRECTS + 1):
            body = data() if callable(data) else data
            async with session.request(
                method,
                url,
                headers=headers,
                data=body,
                allow_redirects=False,
                proxy=proxy_for(url, self.proxy),
            ) as resp:
                reply = Reply(resp.status, resp.headers, await read_body(resp, array, progress))
            if reply.status not in _REDIRECTS:
                return reply
            location = reply.headers.get("Location")
            resendable = callable(data) or isinstance(body, bytes | bytearray | memoryview)
            if not location or not (body is None or resendable):
                return reply
            target = url.join(URL(location, encoded=True))
            if target.origin() != url.origin():
                headers = {
                    k: v for k, v in headers.items() if k.lower() not in _ORIGIN_BOUND_HEADERS
                }
            if reply.status == 303:
                method, data = "GET", None
            url = target
        return reply

    async def request(
        self,
        method: str,
        path: str = "",
        *,
        op: str,
        container: str = "",
        query: str = "",
        headers: Mapping[str, str] | None = None,
        data: Any = None,
        accept: Iterable[int] = (),
        retry: bool = True,
        array: bool = False,
        progress: Progress | None = None,
    ) -> Reply:
        """``method`` on ``storage_url + path + query`` (``path`` already quoted): the reply for
        2xx and the statuses in ``accept``, else the translated error, after retrying transient
        failures and one re-auth on 401. ``data`` may be a function giving a fresh body for each
        attempt (files); ``retry=False`` for bodies that cannot be sent twice (streams);
        ``array``: a large answer's body as a numpy array (``read_body``); ``progress``: a GET
        whose large answer is cut short asks only for the rest (``Progress``)."""
        creds = await self.auth.aget()
        if creds is not self._checked:
            check_header_values("Swift token", creds.token and creds.token.reveal())
            self._checked = creds
        delays = None
        reauthenticated = False
        while True:
            hdrs = dict(headers) if headers else {}
            resuming = progress.request_headers() if progress is not None else {}
            hdrs.update(resuming)
            if creds.token is not None:
                hdrs["X-Auth-Token"] = creds.token.reveal()
            url = URL(creds.storage_url + path + query, encoded=True)
            failure: BaseException | None = None
            try:
                reply = await self._send(method, url, hdrs, data, array, progress)
                status, body = reply.status, reply.body
                if progress is not None and body is progress.body:
                    return Reply(progress.status, progress.headers, body)  # (maybe resumed)
                if resuming and (status < 300 or status == 412):
                    continue  # not the rest of the same version (412: replaced): all again
                if status < 300 or status in accept:
                    return reply
            except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError) as e:
                # Not worth a retry: the certificate will be the same next time.
                detail = getattr(e, "certificate_error", "") or ""
                raise SwiftError(tls_error_text(_origin(creds.storage_url), str(detail))) from None
            except (aiohttp.ClientError, TimeoutError) as e:
                failure, status, body = e, 0, b""
            if status == 401 and not reauthenticated:
                try:
                    creds = await self.auth.arefresh_after_failure(creds)
                except SwiftAuthError as e:
                    raise SwiftAuthError(f"{op} in container {container!r}: {e}") from None
                reauthenticated = True
                if retry:  # else the body is gone (raised below); later requests use the new token
                    continue
            if delays is None:
                delays = self.retry.delays() if retry else iter(())
            delay = next(delays, None) if not status or status in _TRANSIENT else None
            if delay is None and failure is not None:
                malformed = isinstance(failure, aiohttp.ClientResponseError)
                what = "got a malformed answer from" if malformed else "cannot reach"
                text = str(getattr(failure, "message", "") or failure)
                detail = redact((text.splitlines() or [""])[0], creds.token)
                check = check_unreachable(creds.storage_url, self.proxy, "the storage URL")
                raise SwiftError(  # the library's words on a line of their own
                    f"{op} in container {shorten(container)!r} failed after "
                    f"{self.retry.attempts if retry else 1} attempt(s): {what} Swift "
                    f"at {_origin(creds.storage_url)}: {check}\n{type(failure).__name__}: {detail}"
                ) from None
            if delay is None:
                raise self._error(method, op, container, path, status, body, creds)
            if log.isEnabledFor(logging.INFO):
                log.info("%s %s: %s, retrying in %.2f s", method, op, status or failure, delay)
            await asyncio.sleep(delay)

    def _error(
        self,
        method: str,
        op: str,
        container: str,
        path: str,
        status: int,
        body: bytes,
        creds: SwiftCredentials,
    ) -> Exception:
        where = f"swift://{unquote(path.lstrip('/'))}" if path else creds.storage_url
        message = redact(_TAGS.sub(" ", body[:500].decode("utf-8", "replace")), creds.token)
        message = " ".join(message.split())
        if status == 404:
            text = f"{where} not found ({op})"
        elif status == 401:
            text = (
                f"Swift rejected the credentials ({self.auth.describe()}) for {op} in container "
                f"{container!r} (401 Unauthorized), even after authenticating again"
            )
        elif status == 403 and isinstance(self.auth, AnonymousSwift):
            # Ceph RGW answers 403 (Swift: 401) to anonymous requests on a private container.
            text = f"{op} in container {container!r}: {self.auth._rejected()}"
        elif status == 403:
            text = (
                f"Swift refused {op} in container {container!r} (403 Forbidden): "
                f"{self.auth.describe()} has no rights for that there (ask the container's "
                "owner for an ACL, or use credentials of its project)"
            )
        else:
            hint = HINTS.get(status, "") if status != 400 or "name" in message.lower() else ""
            if status == 400 and "InvalidBucketName" in message:
                hint = "Ceph RGW takes container names of 3-255 characters: use a longer name"
            text = f"Swift answered {status} to {method} {where} ({op})"
            text += (f": {message}" if message else "") + (f" ({hint})" if hint else "")
        return error_for_status(text, status, kinds=KINDS)

    async def capabilities(self) -> Capabilities:
        """The cluster's ``/info`` (cached; defaults when the proxy does not publish it)."""
        return self._caps or await self._shared("/info", self._fetch_capabilities)

    async def _fetch_capabilities(self) -> Capabilities:
        url = _info_url((await self.auth.aget()).storage_url)
        caps = Capabilities()
        with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
            async with self._sessions.get().get(url, proxy=proxy_for(url, self.proxy)) as resp:
                info = await resp.json(content_type=None) if resp.status == 200 else {}
            # Ceph RGW publishes ``"bulk_delete": {}``: Swift's default limit applies.
            bulk = info.get("bulk_delete")
            caps = Capabilities(
                bulk_delete=(
                    int(bulk.get("max_deletes_per_request", _BULK_DELETE_DEFAULT))
                    if isinstance(bulk, dict)
                    else 0
                ),
                max_file_size=info.get("swift", {}).get("max_file_size"),
                max_manifest_segments=int(info.get("slo", {}).get("max_manifest_segments", 1000)),
            )
        self._caps = caps
        return caps

    # -- objects -------------------------------------------------------------------------------
    async def get(
        self,
        container: str,
        name: str,
        byte_range: tuple[int, int | None] | None = None,
        *,
        array: bool = False,
        etag: str | None = None,
    ) -> bytes | bytearray | np.ndarray | None:
        """The object's bytes (``byte_range`` = (start, end): end exclusive, negative start =
        suffix; a bytearray from 4 MiB on, or with ``array`` a numpy uint8 array, cheaper to
        fill); None when it does not exist; b"" for a range past its end. ``etag``: the one
        the object must still have, else ``SwiftError`` with status 412 (compared here: Ceph
        RGW refuses ``If-Match`` with the ETag it gives a Static Large Object)."""
        headers = None
        if byte_range is not None:
            start, end = byte_range
            if end is not None and (start < 0 or end < 0):
                size = await self.head_size(container, name)  # counted from the end
                if size is None:
                    return None
                start, end = absolute_range(start, end, size)
            if end is not None and end <= start:
                return b""
            rng = http_range(start, end)
            headers = {"Range": rng} if rng else None
        reply = await self.request(
            "GET",
            quote_name(container, name),
            op="read",
            container=container,
            headers=headers,
            accept=(404, 416),
            array=array,
            progress=Progress(),
        )
        if reply.status < 300:
            check_version(
                f"swift://{container}/{name}", etag, reply.headers.get("ETag"), SwiftError
            )
        if reply.status == 404:
            return None
        if reply.status == 416:
            return b""
        if reply.status == 200 and headers is not None:
            # A proxy that ignored the Range header sent everything: cut it here.
            return slice_whole(reply.body, start, end)
        return reply.body

    async def head(self, container: str, name: str | None = None) -> Mapping[str, str] | None:
        """The object's headers (without ``name``: the container's, with its ACLs and counts),
        or None when it does not exist."""
        reply = await self.request(
            "HEAD", quote_name(container, name), op="stat", container=container, accept=(404,)
        )
        return None if reply.status == 404 else reply.headers

    async def head_size(self, container: str, name: str) -> int | None:
        """The object's size, or None when it does not exist."""
        headers = await self.head(container, name)
        return None if headers is None else int(headers.get("Content-Length", 0))

    async def put(
        self,
        container: str,
        name: str,
        data: bytes | bytearray | memoryview,
        *,
        exclusive: bool = False,
    ) -> None:
        """Write an object, sending its MD5 as ``ETag`` so Swift verifies the body; objects
        above the segment size (or the cluster's limit) become SLOs. ``exclusive``: raise
        ``FileExistsError`` when it exists."""
        size = memoryview(data).nbytes
        etag: asyncio.Future[str] | None = None
        if size > _CAPS_CHECK_MIN or size > self.segment_size:
            if self._caps is None and size <= self.segment_size:  # /info asked during the MD5
                etag = asyncio.ensure_future(md5_hex(data))
            try:
                segment = await self.segment_size_for(size)
                if size > segment:  # (below the cluster's limit) an MD5 under way is left to end
                    writer = SloWriter(self, container, name, segment, exclusive=exclusive)
                    return await writer.write(data)
            except BaseException:
                if etag is not None:
                    etag.cancel()
                raise
        headers = {"ETag": await (etag if etag is not None else md5_hex(data))}
        await self._put(container, name, headers, data, exclusive=exclusive)

    async def segment_size_for(self, size: int | None = None) -> int:
        """The largest object written in one piece: ``segment_size``, or less where the
        cluster's ``max_file_size`` is lower; more for a ``size`` that would otherwise need
        more segments than a manifest may hold."""
        caps = await self.capabilities()
        segment = min(self.segment_size, caps.max_file_size or self.segment_size)
        if size is not None and size > segment:
            segment = max(segment, -(-size // caps.max_manifest_segments))
        return segment

    async def _put(
        self,
        container: str,
        name: str,
        headers: dict[str, str],
        data: Any,
        *,
        query: str = "",
        retry: bool = True,
        exclusive: bool = False,
    ) -> Reply:
        """PUT, creating the container on a 404; ``exclusive``: ``FileExistsError`` when the
        object exists (``If-None-Match: *``)."""
        # 412 means "exists" only for an exclusive write; otherwise it is an error to report.
        accept = (404, 412) if exclusive else (404,)
        if exclusive:
            if await self.head(container, name) is not None:
                # Ceph RGW's Swift API ignores If-None-Match and would overwrite.
                raise FileExistsError(f"swift://{container}/{name} exists")
            headers = {**headers, "If-None-Match": "*"}
        buffer = isinstance(data, bytes | bytearray | memoryview)
        if not buffer or memoryview(data).nbytes >= _MAKE_FIRST_MIN:
            await self.ensure_container(container)
        if buffer and memoryview(data).nbytes >= _VIEW_BODY_MIN:
            data = functools.partial(ViewBody, data)  # a fresh one for each attempt and redirect
        put = functools.partial(
            self.request,
            "PUT",
            quote_name(container, name),
            op="write",
            container=container,
            query=query,
            headers=headers,
            data=data,
            accept=accept,
            retry=retry,
        )
        reply = await put()
        if reply.status == 404:
            # Swift answers 404 when the container does not exist: create it on first write.
            # The proxy may serve a cached "no such container" for a moment after (its info
            # cache races with concurrent writers), hence a few short retries.
            await self.create_container(container)
            for delay in (0.0, 0.05, 0.1, 0.2, 0.4):
                await asyncio.sleep(delay)
                reply = await put()
                if reply.status != 404:
                    break
        if reply.status == 412:
            raise FileExistsError(f"swift://{container}/{name} exists")
        if reply.status == 404:
            raise FileNotFoundError(f"swift://{container} vanished while writing {name!r}")
        self._containers.add(container)
        return reply

    async def delete(self, container: str, names: Iterable[str]) -> int:
        """Delete objects (missing ones are not an error); SLOs with their segments. Uses bulk
        delete when the cluster has it, else concurrent DELETEs. Returns how many existed."""
        names = list(names)
        heads = await asyncio.gather(*(self.head(container, n) for n in names))
        found = {n: _is_slo(h) for n, h in zip(names, heads, strict=True) if h is not None}
        await self.delete_known(container, found)
        return len(found)

    async def delete_prefix(self, container: str, prefix: str) -> int:
        """Delete every object under ``prefix`` (one listing); returns how many there were."""
        entries = [entry async for entry in self.list(container, prefix)]
        await self.delete_known(container, {e["name"]: "slo_etag" in e for e in entries})
        return len(entries)

    async def delete_known(self, container: str, names: Mapping[str, bool]) -> None:
        """Delete objects known to exist: ``names`` maps each to whether it is an SLO manifest."""
        plain = [n for n, slo in names.items() if not slo]
        jobs = [self._delete_one(container, n, slo=True) for n, slo in names.items() if slo]
        caps = await self.capabilities() if len(plain) > 1 else None
        if caps and caps.bulk_delete:
            step = max(_BULK_MIN, -(-len(plain) // _BULK_SPREAD))
            step = min(caps.bulk_delete, _BULK_CHUNK, step)
            jobs += [
                self._bulk_delete(container, plain[i : i + step])
                for i in range(0, len(plain), step)
            ]
        else:
            jobs += [self._delete_one(container, n) for n in plain]
        await asyncio.gather(*jobs)

    async def _delete_one(self, container: str, name: str, slo: bool = False) -> None:
        """DELETE one object; an SLO's manifest with its segments (reported like a bulk delete)."""
        reply = await self.request(
            "DELETE",
            quote_name(container, name),
            op="delete",
            container=container,
            query="?multipart-manifest=delete" if slo else "",
            headers={"Accept": "application/json"} if slo else None,
            accept=(404,),
        )
        if slo and reply.status != 404:
            check_bulk(json.loads(reply.body or b"{}"), container, self.auth.describe)

    async def _bulk_delete(self, container: str, names: list[str]) -> None:
        body = "\n".join(quote_name(container, n) for n in names).encode()
        headers = {"Accept": "application/json", "Content-Type": "text/plain"}
        for attempt in range(2):
            reply = await self.request(
                "POST",
                "",
                op="delete",
                container=container,
                query="?bulk-delete",
                headers=headers,
                data=body,
            )
            result = json.loads(reply.body or b"{}")
            # The whole answer is 200; a rejected token shows per name: authenticate again.
            if attempt or not any(str(s).startswith("401") for _, s in result.get("Errors") or []):
                break
            await self.auth.arefresh_after_failure(await self.auth.aget())
        check_bulk(result, container, self.auth.describe)

    async def slo_segments(self, container: str, name: str) -> dict[str, list[str]]:
        """The segments (container -> names) of the SLO at ``name``; empty when there is no
        object there or it is not an SLO."""
        headers = await self.head(container, name)
        if headers is None or not _is_slo(headers):
            return {}  # (a GET would download a plain object whole)
        reply = await self.request(
            "GET",
            quote_name(container, name),
            op="read",
            container=container,
            query="?multipart-manifest=get",
            accept=(404,),
        )
        if reply.status != 404 and not reply.body.strip():
            # Ceph RGW answers an empty body: the segments are found by the names SloWriter
            # gives them, so only SLOs written here are covered.
            segments = f"{container}_segments"
            listing = self.list(segments, f"{name}/slo/")
            return {segments: [entry["name"] async for entry in listing]}
        if reply.status == 404 or not _is_slo(reply.headers):
            return {}
        out: dict[str, list[str]] = {}
        for seg in json.loads(reply.body):
            seg_container, _, seg_name = seg["name"].lstrip("/").partition("/")
            out.setdefault(seg_container, []).append(seg_name)
        return out

    # -- listing -------------------------------------------------------------------------------
    async def list(
        self,
        container: str,
        prefix: str = "",
        delimiter: str | None = None,
        *,
        limit: int | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Swift's listing entries (``name``/``bytes``/``hash``/``slo_etag``... or ``subdir``)
        under ``prefix``, paged with markers until complete (or ``limit`` entries). A missing
        container lists nothing. Pages end only with an empty one: Ceph RGW may answer fewer
        entries than asked (or than ``/info`` says) while more remain."""
        marker = ""
        path = quote_name(container)
        if isinstance(self.auth, AnonymousSwift):
            # Ceph RGW redirects an anonymous ``container`` to ``container/`` and drops the
            # query (format, marker) on the way: ask for the second form at once.
            path += "/"
        while True:
            params = {"prefix": prefix, "delimiter": delimiter, "marker": marker, "limit": limit}
            query = _query(format="json", **params)
            reply = await self.request(
                "GET", path, op="list", container=container, query=query, accept=(404,)
            )
            if reply.status in (204, 404):
                return
            page = json.loads(reply.body) if reply.body else []
            for entry in page:
                if entry.get("hash") == _EMPTY_MD5 and entry.get("bytes"):
                    entry = await self._slo_entry(container, entry)
                yield entry
            if limit:
                limit -= len(page)
            if not page or limit == 0:
                return
            marker = page[-1].get("name") or page[-1].get("subdir")

    async def _slo_entry(self, container: str, entry: dict[str, Any]) -> dict[str, Any]:
        """A listing entry with the size and ETag of the whole object. Ceph RGW lists an SLO
        with its manifest's own size and the MD5 of nothing (which no non-empty object has)
        and without ``slo_etag``: the object's HEAD says what it is."""
        headers = await self.head(container, entry["name"])
        if headers is None or not _is_slo(headers):
            return entry
        etag = headers.get("ETag", "").strip('"')
        size = int(headers.get("Content-Length", entry["bytes"]))
        return {**entry, "bytes": size, "hash": etag, "slo_etag": etag}

    async def list_containers(self) -> list[dict[str, Any]]:
        """The account's containers (``name``, ``count``, ``bytes``), every page."""
        out: list[dict[str, Any]] = []
        while True:
            query = _query(format="json", marker=out[-1]["name"] if out else "")
            reply = await self.request("GET", "", op="list containers", query=query)
            page = json.loads(reply.body) if reply.body else []
            if not page:
                return out
            out += page

    # -- containers ----------------------------------------------------------------------------
    head_container = head  # called with the container only

    async def create_container(self, container: str) -> None:
        """Create the container (idempotent; concurrent callers share one request)."""
        await self._shared(container, functools.partial(self._create_container, container))
        self._containers.add(container)

    async def ensure_container(self, container: str) -> None:
        """Before a large body into a container this client has not written into: a HEAD, and
        the container made if missing, so that this costs a short request, not the body sent
        twice (Swift and RGW read it all before their 404). A refusal (403: a writer by ACL may
        not read or create) is left to the write to report. Concurrent callers share one."""
        if container not in self._containers:
            await self._shared(f"/exists/{container}", functools.partial(self._ensure, container))

    async def _ensure(self, container: str) -> None:
        reply = await self.request(
            "HEAD", quote_name(container), op="stat", container=container, accept=(403, 404)
        )
        if reply.status < 300:
            self._containers.add(container)
        elif reply.status == 404:
            await self.create_container(container)

    async def _create_container(self, container: str) -> None:
        path = quote_name(container)
        reply = await self.request("PUT", path, op="create", container=container, accept=(409,))
        if reply.status == 409:  # a HEAD tells whether the container is ours
            reply = await self.request(
                "HEAD", path, op="stat", container=container, accept=(403, 404)
            )
        if reply.status >= 300:
            raise SwiftError(
                f"swift://{container} cannot be created: the name is taken by another "
                "account (Ceph RGW shares container names between accounts); choose "
                "another name",
                status=409,
            )
        # 409 otherwise: Ceph RGW's answer for an existing container whose ACL differs.

    async def delete_container(self, container: str) -> None:
        """Delete an empty container; ``OSError`` when it holds objects."""
        reply = await self.request(
            "DELETE", quote_name(container), op="delete", container=container, accept=(409,)
        )
        if reply.status == 409:
            raise SwiftError(f"swift://{container} is not empty", status=409)
        self._containers.discard(container)

    async def post_container(self, container: str, headers: Mapping[str, str]) -> None:
        """Set container metadata (ACLs)."""
        await self.request(
            "POST",
            quote_name(container),
            op="change the ACL of",
            container=container,
            headers=headers,
        )


def _query(**params: Any) -> str:
    """``?k=v&...`` for the parameters that are set, each value quoted whole."""
    return "?" + urlencode({k: v for k, v in params.items() if v}, safe="", quote_via=quote)


def _forget(pending: dict[Any, Any], key: Any, task: asyncio.Future[Any]) -> None:
    """Drop a finished shared request; its error is retrieved here (each waiter gets its own
    copy), so a failure after every waiter was cancelled is not logged as never retrieved."""
    if pending.get(key) is task:  # not one started after close() dropped this one
        del pending[key]
    if not task.cancelled():
        task.exception()


def _is_slo(headers: Mapping[str, str]) -> bool:
    return headers.get("X-Static-Large-Object", "").lower() in ("true", "1", "yes")


def _origin(url: str) -> str:
    u = URL(url)
    return f"{u.scheme}://{u.host}:{u.port}" if u.host else url


def _info_url(storage_url: str) -> str:
    """``/info`` lives in front of ``/v1/<account>`` (Ceph RGW: ``/swift/info`` in front of
    ``/swift/v1``, with or without an account)."""
    i = (storage_url.rstrip("/") + "/").find("/v1/")
    base = storage_url[:i] if i >= 0 else _origin(storage_url)
    return f"{base}/info"
