"""The ceilings: minimal aiohttp clients doing the same PUTs and GETs, 16 at a time.

Nothing but what the protocol needs: Swift's ``X-Auth-Token``; for S3, SigV4 signed here with
hmac/hashlib (payload hashed, as botocore does over plain http).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
from yarl import URL

CONCURRENCY = 16
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class LoopRunner:
    """A persistent event loop driven from this thread (sessions live across calls)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run[T](self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.loop.close()


async def _bounded[T](jobs: Iterable[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    sem = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[T]]) -> T:
        async with sem:
            return await job()

    return await asyncio.gather(*(one(j) for j in jobs))


def _session(limit: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
    )


class _RawClient:
    """One aiohttp session, made on first use, for ``concurrency`` requests in flight."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = _session(self.concurrency)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class RawSwift(_RawClient):
    """Swift by hand: one session, a token header, ``CONCURRENCY`` requests in flight."""

    def __init__(self, storage_url: str, token: str, concurrency: int = CONCURRENCY) -> None:
        super().__init__(concurrency)
        self.url = storage_url.rstrip("/")
        self.headers = {"X-Auth-Token": token}

    def _u(self, container: str, name: str = "") -> URL:
        path = f"{self.url}/{quote(container)}" + (f"/{quote(name)}" if name else "")
        return URL(path, encoded=True)

    async def _put(self, container: str, name: str, data: bytes) -> None:
        async with self.session.put(self._u(container, name), data=data, headers=self.headers) as r:
            await r.read()
            r.raise_for_status()

    async def _get(self, container: str, name: str) -> bytes:
        async with self.session.get(self._u(container, name), headers=self.headers) as r:
            r.raise_for_status()
            return await r.read()

    async def create_container(self, container: str) -> None:
        async with self.session.put(self._u(container), headers=self.headers) as r:
            r.raise_for_status()

    async def put_all(self, container: str, items: list[tuple[str, bytes]]) -> None:
        jobs = [lambda n=n, d=d: self._put(container, n, d) for n, d in items]
        await _bounded(jobs, self.concurrency)

    async def get_all(self, container: str, names: list[str]) -> list[bytes]:
        return await _bounded(
            [lambda n=n: self._get(container, n) for n in names], self.concurrency
        )

    async def list_all(self, container: str, prefix: str = "") -> list[str]:
        """Every name under ``prefix``, page after page (marker)."""
        names: list[str] = []
        while True:
            params = {"format": "json", "prefix": prefix}
            if names:
                params["marker"] = names[-1]
            async with self.session.get(
                self._u(container), params=params, headers=self.headers
            ) as r:
                r.raise_for_status()
                page = json.loads(await r.read() or b"[]")
            if not page:
                return names
            names += [e["name"] for e in page]

    async def bulk_delete(self, container: str, names: list[str], per_request: int = 10000) -> None:
        """Swift's bulk delete: up to ``per_request`` names per POST, the POSTs in parallel."""

        async def one(batch: list[str]) -> None:
            body = "\n".join(f"/{quote(container)}/{quote(n)}" for n in batch).encode()
            headers = {**self.headers, "Accept": "application/json", "Content-Type": "text/plain"}
            async with self.session.post(
                URL(f"{self.url}?bulk-delete", encoded=True), data=body, headers=headers
            ) as r:
                r.raise_for_status()
                result = json.loads(await r.read())
            if result.get("Errors"):
                raise RuntimeError(f"bulk delete: {result['Errors'][:3]}")

        batches = [names[i : i + per_request] for i in range(0, len(names), per_request)]
        await _bounded([lambda b=b: one(b) for b in batches], self.concurrency)


class SigV4:
    """AWS Signature Version 4 for S3, the minimum: signed host, date, payload hash, token."""

    def __init__(
        self, access_key: str, secret_key: str, token: str | None, region: str = "us-east-1"
    ) -> None:
        self.access_key = access_key
        self.secret_key = secret_key
        self.token = token
        self.region = region
        self._keys: dict[str, bytes] = {}

    def _signing_key(self, day: str) -> bytes:
        key = self._keys.get(day)
        if key is None:
            key = ("AWS4" + self.secret_key).encode()
            for part in (day, self.region, "s3", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._keys = {day: key}
        return key

    def headers(
        self, method: str, host: str, path: str, query: str, payload_sha256: str
    ) -> dict[str, str]:
        """Headers that sign ``method host path?query`` (path and query already encoded)."""
        now = datetime.now(UTC)
        stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        headers = {"host": host, "x-amz-content-sha256": payload_sha256, "x-amz-date": stamp}
        if self.token:
            headers["x-amz-security-token"] = self.token
        signed = ";".join(sorted(headers))
        canonical = "\n".join(
            [
                method,
                path,
                query,
                *(f"{k}:{headers[k]}" for k in sorted(headers)),
                "",
                signed,
                payload_sha256,
            ]
        )
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        signature = hmac.new(self._signing_key(day), to_sign.encode(), hashlib.sha256).hexdigest()
        headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature}"
        )
        del headers["host"]  # aiohttp sends the same Host itself
        return headers


def _query(params: dict[str, str]) -> str:
    return "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params.items())
    )


class RawS3(_RawClient):
    """S3 by hand: path-style URLs, SigV4 per request, ``CONCURRENCY`` requests in flight."""

    def __init__(
        self,
        endpoint: str,
        signer: SigV4,
        concurrency: int = CONCURRENCY,
    ) -> None:
        super().__init__(concurrency)
        self.endpoint = endpoint.rstrip("/")
        self.host = urlsplit(self.endpoint).netloc
        self.signer = signer

    async def _request(
        self,
        method: str,
        bucket: str,
        key: str = "",
        params: dict[str, str] | None = None,
        data: bytes | None = None,
    ) -> bytes:
        path = quote(f"/{bucket}/{key}" if key else f"/{bucket}", safe="/-_.~")
        query = _query(params or {})
        digest = hashlib.sha256(data).hexdigest() if data else _EMPTY_SHA256
        headers = self.signer.headers(method, self.host, path, query, digest)
        url = URL(f"{self.endpoint}{path}" + (f"?{query}" if query else ""), encoded=True)
        async with self.session.request(method, url, data=data, headers=headers) as r:
            body = await r.read()
            if r.status >= 300:
                raise RuntimeError(f"{method} {path}: {r.status} {body[:200]!r}")
            return body

    async def put_all(self, bucket: str, items: list[tuple[str, bytes]]) -> None:
        jobs = [lambda k=k, d=d: self._request("PUT", bucket, k, data=d) for k, d in items]
        await _bounded(jobs, self.concurrency)

    async def get_all(self, bucket: str, keys: list[str]) -> list[bytes]:
        jobs = [lambda k=k: self._request("GET", bucket, k) for k in keys]
        return await _bounded(jobs, self.concurrency)

    async def list_all(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key under ``prefix`` (ListObjectsV2, page after page)."""
        keys: list[str] = []
        params = {"list-type": "2", "prefix": prefix}
        while True:
            root = ET.fromstring(await self._request("GET", bucket, params=params))
            ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
            keys += [k.text or "" for k in root.iter(f"{ns}Key")]
            token = root.findtext(f"{ns}NextContinuationToken")
            if root.findtext(f"{ns}IsTruncated") != "true" or not token:
                return keys
            params = {**params, "continuation-token": token}
